/**
 * A live's comments for a playhead: reads `GET /v1/lives/:liveId/messages` in windows ahead of
 * wherever the playhead is, and hands out each message once the playhead passes its `offsetMs`.
 * A seek forgets what was read and reads again from a little before the new place, so comments
 * sent just before it are still drawn (part-way through their flight).
 */
import type { Message, MessageType } from '@danmaku/protocol';
import { ClientError } from './options.js';

const WINDOW_MS = 30_000;
/** Read the next window once the playhead is this close to the end of what is read. */
const LOOKAHEAD_MS = 10_000;
/** After a seek, read this far back too: comments sent just before are still on screen. */
const LOOKBACK_MS = 15_000;
/** A live still on: read no closer to "now" than this, so the archiver has written what we read. */
const ARCHIVE_LAG_MS = 3000;

export interface ReplayFeedOptions {
  baseUrl: string;
  liveId: string;
  /** Default: comment, gift, system. */
  types?: MessageType[];
  fetch?: typeof fetch;
  onError?: (error: ClientError) => void;
}

interface LiveInfo {
  startedAt: number;
  durationMs: number | null;
}

export class ReplayFeed {
  private readonly baseUrl: string;
  private readonly types: MessageType[];
  private readonly fetch: typeof fetch;
  private live: LiveInfo | null = null;
  private buffer: Message[] = [];
  private fetchedTo = 0;
  private shownUpTo = 0;
  private fetching = false;
  /** Bumped on every seek so a window read for the old place is dropped. */
  private generation = 0;

  constructor(private readonly options: ReplayFeedOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, '');
    this.types = options.types ?? ['comment', 'gift', 'system'];
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** How far (ms into the live) the messages have been read. */
  get readUpTo(): number {
    return this.fetchedTo;
  }

  /** The playhead jumped: forget what was read and shown. */
  seek(headMs: number): void {
    this.generation++;
    this.fetching = false;
    this.buffer = [];
    this.fetchedTo = Math.max(0, headMs - LOOKBACK_MS);
    this.shownUpTo = this.fetchedTo;
  }

  /**
   * The messages due at `headMs` not handed out before, oldest first, with how long each has
   * been on screen by then; reads ahead as needed (call it every 100 ms or so).
   */
  due(headMs: number): { message: Message; elapsedMs: number }[] {
    if (this.fetchedTo - headMs < LOOKAHEAD_MS) void this.readAhead();
    const out: { message: Message; elapsedMs: number }[] = [];
    // `<=`: paused exactly on a comment's moment shows it (at the start of its flight).
    while (this.buffer.length > 0 && (this.buffer[0]?.offsetMs ?? 0) <= headMs) {
      const m = this.buffer.shift() as Message;
      const at = m.offsetMs ?? 0;
      if (at >= this.shownUpTo) out.push({ message: m, elapsedMs: Math.max(0, headMs - at) });
    }
    // Handed out up to the playhead only as far as the messages have been read.
    this.shownUpTo = Math.max(this.shownUpTo, Math.min(headMs, this.fetchedTo));
    return out;
  }

  private async get<T>(path: string): Promise<T> {
    const response = await this.fetch(`${this.baseUrl}${path}`);
    const body = (await response.json()) as T & { error?: { code: string; message: string } };
    if (!response.ok) throw new ClientError(body.error?.code ?? 'http_error', body.error?.message ?? `HTTP ${response.status}`, response.status);
    return body;
  }

  private async readAhead(): Promise<void> {
    if (this.fetching) return;
    this.fetching = true;
    const mine = this.generation;
    const live = `/v1/lives/${encodeURIComponent(this.options.liveId)}`;
    try {
      this.live ??= await this.get<LiveInfo>(live);
      // A window is read once: for a live still on it must end where the archive is complete.
      const limit = this.live.durationMs ?? Date.now() - this.live.startedAt - ARCHIVE_LAG_MS;
      if (this.fetchedTo >= limit) {
        // A live still on is asked again for its duration next time.
        if (this.live.durationMs === null) this.live = null;
        return;
      }
      const to = this.live.durationMs === null ? Math.min(this.fetchedTo + WINDOW_MS, limit) : this.fetchedTo + WINDOW_MS;
      let from = this.fetchedTo;
      const got: Message[] = [];
      // A window may come in several pages (`next`); it is buffered only when complete.
      for (;;) {
        const page = await this.get<{ messages: Message[]; next: number | null }>(`${live}/messages?from=${from}&to=${to}&types=${this.types.join(',')}&limit=1000`);
        if (mine !== this.generation) return;
        got.push(...page.messages);
        if (page.next === null || page.next >= to) break;
        from = page.next;
      }
      this.buffer = [...this.buffer, ...got].sort((a, b) => (a.offsetMs ?? 0) - (b.offsetMs ?? 0));
      this.fetchedTo = to;
    } catch (err) {
      if (mine === this.generation) this.options.onError?.(err instanceof ClientError ? err : new ClientError('network', String(err)));
    } finally {
      if (mine === this.generation) this.fetching = false;
    }
  }
}
