/**
 * ArtPlayer with artplayer-plugin-danmuku: a live's comments as the plugin's `danmuku` source
 * (timed by the video, from `GET /v1/lives/:liveId/messages`), and a room's new comments emitted
 * into it as they come through the SDK. No import of ArtPlayer: the plugin is typed here by the
 * little this uses of it (its `emit`), so the SDK works with whichever version the site has.
 *
 *   const art = new Artplayer({ container, url, plugins: [artplayerPluginDanmuku({
 *     danmuku: liveDanmuku({ baseUrl, liveId }) })] });
 *   connectArtplayer(art.plugins.artplayerPluginDanmuku, { baseUrl, roomId });
 */
import type { Message, MessageType } from '@danmaku/protocol';
import type { DanmakuClient } from './client.js';
import { createClient } from './index.js';
import { ClientError, type ClientOptions } from './options.js';
import { styleOf } from './stage.js';

/** A danmu as artplayer-plugin-danmuku takes it: mode 0 scroll, 1 top, 2 bottom; time in seconds. */
export interface ArtDanmu {
  text: string;
  mode?: 0 | 1 | 2;
  color?: string;
  time?: number;
  border?: boolean;
}

/** What this adapter needs of the plugin instance (`art.plugins.artplayerPluginDanmuku`). */
export interface ArtDanmukuPlugin {
  emit(danmu: ArtDanmu): unknown;
}

const MODES = { scroll: 0, top: 1, bottom: 2 } as const;

/** A comment as a danmu; other message types have nothing to draw. `myId` marks your own with a border. */
export function toArtDanmu(m: Message, myId?: string): ArtDanmu | null {
  if (m.type !== 'comment' || !m.content) return null;
  const { color, mode } = styleOf(m);
  return {
    text: m.content,
    mode: MODES[mode],
    color: color ?? '#FFFFFF',
    ...(m.offsetMs !== undefined ? { time: m.offsetMs / 1000 } : {}),
    ...(myId !== undefined && m.user.id === myId ? { border: true } : {}),
  };
}

export interface LiveDanmukuOptions {
  baseUrl: string;
  liveId: string;
  types?: MessageType[];
  fetch?: typeof fetch;
}

/**
 * The plugin's `danmuku` source for a live: every comment, timed by its offset into the live
 * (the recording's time 0 is the live's start), read page by page.
 */
export function liveDanmuku(options: LiveDanmukuOptions): () => Promise<ArtDanmu[]> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const base = `${options.baseUrl.replace(/\/$/, '')}/v1/lives/${encodeURIComponent(options.liveId)}/messages`;
  const types = (options.types ?? ['comment']).join(',');
  return async () => {
    const out: ArtDanmu[] = [];
    let from = 0;
    for (;;) {
      const response = await doFetch(`${base}?from=${from}&types=${types}&limit=1000`);
      const body = (await response.json()) as { messages: Message[]; next: number | null; error?: { code: string; message: string } };
      if (!response.ok) throw new ClientError(body.error?.code ?? 'http_error', body.error?.message ?? `HTTP ${response.status}`, response.status);
      for (const m of body.messages) {
        const danmu = toArtDanmu(m);
        if (danmu) out.push(danmu);
      }
      if (body.next === null || body.next <= from) return out;
      from = body.next;
    }
  };
}

/**
 * A room's new comments into the plugin, live, through the SDK (long connection or polls).
 * Started here; stop it with the returned client's `stop()`.
 */
export function connectArtplayer(plugin: ArtDanmukuPlugin, options: Omit<ClientOptions, 'onMessages'>): DanmakuClient {
  const client = createClient({
    types: ['comment'],
    ...options,
    onMessages: (messages) => {
      for (const m of messages) {
        // Live: drawn now, not at an offset of the video.
        const danmu = toArtDanmu({ ...m, offsetMs: undefined } as Message, options.uid);
        if (danmu) plugin.emit(danmu);
      }
    },
  });
  void client.start();
  return client;
}
