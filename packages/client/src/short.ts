/** The short connection: polling `GET /v1/rooms/:roomId/messages` with the cursor, at the pace the server asks. */
import type { Message, MessageType } from '@danmaku/protocol';
import { sendOverHttp, roomUrl, type HttpTarget } from './http.js';
import { ClientError } from './options.js';
import type { SendBody, SendResult, Transport, TransportEvents } from './transport.js';

export interface PollOptions extends HttpTarget {
  types: MessageType[];
  token?: string;
  /** The router's poll interval: the wait when the server names none, and the base of the backoff. */
  intervalMs: () => number;
}

interface PollPage {
  messages: Message[];
  cursor: string;
  skipped?: boolean;
  retryAfterMs: number;
}

/** Never waits less than this between polls, whatever a server says. */
const MIN_WAIT_MS = 200;
/** A failing front is asked again at most this far apart. */
const MAX_BACKOFF_MS = 10_000;

export class PollTransport implements Transport {
  readonly mode = 'short' as const;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly options: PollOptions,
    private readonly events: TransportEvents,
  ) {}

  open(): void {
    if (this.running) return;
    this.running = true;
    void this.pollOnce();
  }

  close(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Polling's link is HTTP, and so is its send. */
  async send(body: SendBody): Promise<SendResult | null> {
    if (!this.options.token) return null;
    return sendOverHttp(this.options, this.options.token, body);
  }

  private async pollOnce(): Promise<void> {
    if (!this.running) return;
    let wait = this.options.intervalMs();
    try {
      const q = new URLSearchParams({ types: this.options.types.join(',') });
      const cursor = this.events.cursor();
      if (cursor) q.set('cursor', cursor);
      const response = await this.options.fetch(roomUrl(this.options, `messages?${q.toString()}`));
      if (!response.ok) throw new ClientError('poll_failed', `Poll answered ${response.status}.`, response.status);
      const page = (await response.json()) as PollPage;
      if (!this.running) return;
      if (page.skipped) this.events.rewind(page.cursor);
      this.events.messages(page.messages);
      this.events.advance(page.cursor);
      wait = Math.max(MIN_WAIT_MS, page.retryAfterMs ?? this.options.intervalMs());
      this.events.up(0);
    } catch {
      this.events.failed('poll_failed');
      wait = Math.min(this.options.intervalMs() * 2, MAX_BACKOFF_MS);
    }
    if (this.running) this.timer = setTimeout(() => void this.pollOnce(), wait);
  }
}
