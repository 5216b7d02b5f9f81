/**
 * The OBS overlay (`/overlay/:roomId`): a transparent page with nothing but the flying danmaku,
 * for a 1920x1080 browser source. Options come from the query string, so a streamer sets them in
 * OBS's URL field:
 *
 *   lanes=N (scrolling lanes, default: as many as fit), speed=PX_PER_S (140), fontSize=PX (36),
 *   opacity=0..1 (1), types=comment,gift,like,notice (comment,gift), max=N (most on screen, 80)
 *
 * There is nobody to click: the connection never gives up. The SDK polls when the long
 * connection fails and keeps polling while the server is away; it asks for a long connection
 * again every few seconds rather than minutes. Everything shown is text, never HTML.
 */
import { createClient, type MessageType } from '@danmaku/client';
import { api, byId, idFromLocation } from './common.js';
import { Stage } from './stage.js';

const OVERLAY_TYPES = ['comment', 'gift', 'like', 'notice'] as const;
type OverlayType = (typeof OVERLAY_TYPES)[number];
const REFRESH_MS = 5000;

const roomId = idFromLocation('overlay', 'room') ?? 'demo';
const roomPath = `/v1/rooms/${encodeURIComponent(roomId)}`;
const query = new URLSearchParams(location.search);

/** A number option within bounds; anything else is the default (a typo must not blank the overlay). */
function numberOption(name: string, min: number, max: number): number | undefined {
  const text = query.get(name);
  if (text === null || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : undefined;
}

function typesOption(): Set<OverlayType> {
  const text = query.get('types');
  const wanted = (text ?? 'comment,gift').split(',').map((t) => t.trim());
  const types = new Set(wanted.filter((t): t is OverlayType => (OVERLAY_TYPES as readonly string[]).includes(t)));
  return types.size > 0 ? types : new Set<OverlayType>(['comment']);
}

const types = typesOption();
const maxOnScreen = Math.round(numberOption('max', 1, 500) ?? 80);
const lanes = numberOption('lanes', 1, 40);
const stage = new Stage(byId('stage'), {
  fontSizePx: numberOption('fontSize', 10, 160) ?? 36,
  speedPxPerSec: numberOption('speed', 20, 3000) ?? 140,
  opacity: numberOption('opacity', 0, 1) ?? 1,
  maxOnScreen,
  maxQueue: maxOnScreen * 2,
  ...(lanes !== undefined ? { maxLanes: Math.round(lanes) } : {}),
});

const streamTypes: MessageType[] = [];
if (types.has('comment')) streamTypes.push('comment');
if (types.has('gift')) streamTypes.push('gift');
if (types.has('notice')) streamTypes.push('system');

let likes = 0;
function showLikes(n: number): void {
  // Socket `room` packets and the room answer may arrive out of order; the total only grows.
  likes = Math.max(likes, n);
  const el = byId('likes');
  el.hidden = false;
  el.textContent = `❤ ${likes}`;
}

async function refresh(): Promise<void> {
  try {
    if (types.has('like')) showLikes((await api<{ likes: number }>(roomPath)).likes);
    if (types.has('notice')) {
      const { notice } = await api<{ notice: { content: string } | null }>(`${roomPath}/notice`);
      const el = byId('notice');
      el.hidden = !notice;
      el.textContent = notice?.content ?? '';
    }
  } catch {
    // The server is away: the next refresh tries again.
  }
}

if (streamTypes.length > 0) {
  const client = createClient({
    baseUrl: location.origin,
    roomId,
    types: streamTypes,
    version: 'overlay-1',
    // A browser source runs for hours unattended: back to a long connection within seconds of
    // the server's return, not the viewer page's minutes.
    longRetryMs: 3000,
    longRetryMaxMs: 30_000,
    onMessages: (messages) => stage.show(messages),
    onDeleted: (ids) => stage.remove(ids),
    onRoom: (info) => {
      if (types.has('like')) showLikes(info.likes);
    },
    onMode: (mode) => {
      document.documentElement.dataset.mode = mode;
    },
  });
  void client.start();
}
if (types.has('like') || types.has('notice')) {
  void refresh();
  setInterval(() => void refresh(), REFRESH_MS);
}
