/**
 * The Danmaku client SDK, for browsers and Node (no Node-only imports: fetch, timers, socket.io-client).
 *
 * It asks the router how to connect, uses a socket.io long connection when told to and polls the
 * HTTP API otherwise. Three failed connects in a row degrade it to polling; it tries long again
 * later, with backoff. Whatever the mode, messages reach `onMessages` once each (dedup by id and
 * by seq per type) and in seq order per type, across reconnects and mode switches.
 */
import { io, type Socket } from 'socket.io-client';
import type { Message, MessageType } from '@danmaku/model';

export type { Message, MessageType } from '@danmaku/model';

export type Mode = 'long' | 'short';

export interface RoomInfo {
  roomId: string;
  online: number;
  likes: number;
}

export interface ClientOptions {
  /** The front: HTTP API, `/v1/client-metrics`, and `/v1/route` unless routerUrl says otherwise. */
  baseUrl: string;
  /** Where `GET /v1/route` is served when the router is not behind the front's address (split roles). */
  routerUrl?: string;
  roomId: string;
  /** Default: comment, gift, enter, system (as a poll without `types`). */
  types?: MessageType[];
  /** Needed to send; reading works without. */
  token?: string;
  uid?: string;
  deviceId?: string;
  /** The app version, for the router's black/white lists. */
  version?: string;
  onMessages?: (messages: Message[]) => void;
  onDeleted?: (ids: string[]) => void;
  onRoom?: (info: RoomInfo) => void;
  /** Mode changes, with the reason (the router's, or "degraded" after failed connects). */
  onMode?: (mode: Mode, reason: string, endpoint?: string) => void;
  onError?: (error: ClientError) => void;
  /** A connect (handshake + join) not done within this counts as failed. */
  connectTimeoutMs?: number;
  /** Consecutive failed connects before degrading to polling (Meipai: 3). */
  maxFailures?: number;
  /** First wait before trying long again after degrading; doubles each time up to longRetryMaxMs. */
  longRetryMs?: number;
  longRetryMaxMs?: number;
  /** How often connection metrics are reported (0: never). */
  metricsIntervalMs?: number;
  /** Report the delivery latency of one message in this many. */
  latencySampleEvery?: number;
  /** For tests and unusual runtimes. */
  fetch?: typeof fetch;
}

export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

interface RouteAnswer {
  mode: Mode;
  endpoints: string[];
  pollIntervalMs: number;
  reason?: string;
}

interface MessagesPacket {
  roomId: string;
  messages: Message[];
  cursor?: string;
}

type MetricKind = 'connect' | 'connect_failed' | 'disconnect' | 'degraded' | 'long_restored' | 'poll_failed' | 'delivery';

const DEFAULT_TYPES: MessageType[] = ['comment', 'gift', 'enter', 'system'];
const SEEN_IDS = 5000;

/** The server's cursor is `type.seq,...` in base64url; the SDK keeps the seqs itself so it can merge sources. */
function decodeCursor(text: string): Map<string, number> {
  const out = new Map<string, number>();
  try {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const plain = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    for (const part of plain.split(',')) {
      const [type, seq] = part.split('.');
      if (type && seq && /^\d+$/.test(seq)) out.set(type, Number(seq));
    }
  } catch {
    // Not a cursor we understand: keep our own seqs.
  }
  return out;
}

function encodeCursor(seqs: Map<string, number>): string {
  const plain = [...seqs].map(([type, seq]) => `${type}.${seq}`).join(',');
  return btoa(plain).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export class DanmakuClient {
  private readonly options: Required<Omit<ClientOptions, 'routerUrl' | 'token' | 'uid' | 'deviceId' | 'version' | 'onMessages' | 'onDeleted' | 'onRoom' | 'onMode' | 'onError' | 'fetch'>> &
    ClientOptions;
  private readonly fetch: typeof fetch;
  private readonly seqs = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private socket: Socket | null = null;
  private joined = false;
  private failures = 0;
  private degradations = 0;
  private endpoints: string[] = [];
  private endpointIndex = 0;
  private pollIntervalMs = 2000;
  private polling = false;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private metricsTimer: ReturnType<typeof setInterval> | null = null;
  private samples: { kind: MetricKind; mode: Mode; ms?: number }[] = [];
  private delivered = 0;
  private stopped = false;
  private currentMode: Mode | null = null;
  private currentEndpoint: string | null = null;

  constructor(options: ClientOptions) {
    this.options = {
      types: DEFAULT_TYPES,
      connectTimeoutMs: 5000,
      maxFailures: 3,
      longRetryMs: 30_000,
      longRetryMaxMs: 5 * 60_000,
      metricsIntervalMs: 30_000,
      latencySampleEvery: 20,
      ...options,
      baseUrl: options.baseUrl.replace(/\/$/, ''),
    };
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get mode(): Mode | null {
    return this.currentMode;
  }

  /** The connector in use (long mode), else null. */
  get endpoint(): string | null {
    return this.currentMode === 'long' ? this.currentEndpoint : null;
  }

  /** The newest seq seen per type, as the server's opaque cursor. */
  get cursor(): string | undefined {
    return this.seqs.size > 0 ? encodeCursor(this.seqs) : undefined;
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.options.metricsIntervalMs > 0) this.metricsTimer = setInterval(() => void this.flushMetrics(), this.options.metricsIntervalMs);
    await this.route();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopPolling();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.closeSocket();
    await this.flushMetrics();
  }

  /** Sends over the long connection when there is one (same path as HTTP on the server), else HTTP. */
  async send(body: { type: 'comment' | 'gift'; content?: string; giftId?: string; count?: number; clientMsgId?: string }): Promise<{ id: string; ts: number }> {
    if (!this.options.token) throw new ClientError('missing_token', 'Sending needs a token.');
    const socket = this.socket;
    if (socket && this.joined) {
      try {
        const ack = (await socket.timeout(this.options.connectTimeoutMs).emitWithAck('send', { roomId: this.options.roomId, ...body })) as
          | { ok: true; id: string; ts: number }
          | { ok: false; error: { code: string; message: string } };
        if (ack.ok) return { id: ack.id, ts: ack.ts };
        throw new ClientError(ack.error.code, ack.error.message);
      } catch (err) {
        if (err instanceof ClientError) throw err;
        // The socket went away mid-send: HTTP below (a clientMsgId makes the retry safe).
      }
    }
    const response = await this.fetch(`${this.options.baseUrl}/v1/rooms/${encodeURIComponent(this.options.roomId)}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as { id: string; ts: number } & { error?: { code: string; message: string } };
    if (!response.ok) throw new ClientError(answer.error?.code ?? 'http_error', answer.error?.message ?? `HTTP ${response.status}`, response.status);
    return { id: answer.id, ts: answer.ts };
  }

  // --- routing -----------------------------------------------------------------------------

  private async route(): Promise<void> {
    if (this.stopped) return;
    let answer: RouteAnswer;
    try {
      const q = new URLSearchParams();
      if (this.options.uid) q.set('uid', this.options.uid);
      if (this.options.deviceId) q.set('deviceId', this.options.deviceId);
      if (this.options.version) q.set('version', this.options.version);
      const response = await this.fetch(`${(this.options.routerUrl ?? this.options.baseUrl).replace(/\/$/, '')}/v1/route?${q.toString()}`);
      if (!response.ok) throw new ClientError('route_failed', `The router answered ${response.status}.`, response.status);
      answer = (await response.json()) as RouteAnswer;
    } catch {
      // No router: polling still works through the front.
      answer = { mode: 'short', endpoints: [], pollIntervalMs: this.pollIntervalMs, reason: 'router_unavailable' };
    }
    if (this.stopped) return;
    this.pollIntervalMs = answer.pollIntervalMs;
    if (answer.mode === 'long' && answer.endpoints.length > 0) {
      this.endpoints = answer.endpoints;
      this.endpointIndex = 0;
      this.connectLong();
    } else {
      this.setMode('short', answer.reason ?? 'router');
      this.startPolling();
      // The operators may turn long connections on for us later: ask again now and then.
      this.scheduleLongRetry();
    }
  }

  private scheduleLongRetry(): void {
    if (this.retryTimer || this.stopped) return;
    const wait = Math.min(this.options.longRetryMs * 2 ** Math.max(0, this.degradations - 1), this.options.longRetryMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.failures = 0;
      void this.route();
    }, wait);
  }

  // --- long connection ---------------------------------------------------------------------

  private connectLong(): void {
    if (this.stopped) return;
    this.closeSocket();
    const url = this.endpoints[this.endpointIndex % this.endpoints.length] as string;
    const started = Date.now();
    const socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: this.options.connectTimeoutMs,
      auth: this.options.token ? { token: this.options.token } : {},
    });
    this.socket = socket;
    let settled = false;
    const watchdog = setTimeout(() => fail('timeout'), this.options.connectTimeoutMs);
    const fail = (why: string): void => {
      if (settled || this.socket !== socket) return;
      settled = true;
      clearTimeout(watchdog);
      this.onConnectFailed(why);
    };

    socket.on('connect', () => {
      const join: { roomId: string; types: MessageType[]; cursor?: string } = { roomId: this.options.roomId, types: this.options.types };
      const cursor = this.cursor;
      if (cursor) join.cursor = cursor;
      socket
        .timeout(this.options.connectTimeoutMs)
        .emitWithAck('join', join)
        .then((ack: { ok: boolean; cursor?: string; error?: { code: string; message: string } }) => {
          if (settled || this.socket !== socket) return;
          if (!ack.ok) {
            if (ack.error?.code === 'banned' || ack.error?.code === 'invalid_request') {
              // Not a connection problem: no mode will fix it.
              settled = true;
              clearTimeout(watchdog);
              this.options.onError?.(new ClientError(ack.error.code, ack.error.message, 403));
              this.closeSocket();
              return;
            }
            return fail(ack.error?.code ?? 'join_refused');
          }
          settled = true;
          clearTimeout(watchdog);
          this.joined = true;
          this.failures = 0;
          if (ack.cursor) this.mergeCursor(ack.cursor);
          this.stopPolling();
          if (this.degradations > 0 && this.currentMode === 'short') this.sample('long_restored', 'long');
          this.sample('connect', 'long', Date.now() - started);
          this.setMode('long', 'connected', url);
        })
        .catch(() => fail('join_timeout'));
    });
    socket.on('connect_error', (err: Error) => fail(err.message));
    socket.on('messages', (packet: MessagesPacket) => {
      if (packet.roomId !== this.options.roomId) return;
      this.deliver(packet.messages, 'long');
      if (packet.cursor) this.mergeCursor(packet.cursor);
    });
    socket.on('deleted', (packet: { roomId: string; ids: string[] }) => {
      if (packet.roomId === this.options.roomId) this.options.onDeleted?.(packet.ids);
    });
    socket.on('room', (info: RoomInfo) => {
      if (info.roomId === this.options.roomId) this.options.onRoom?.(info);
    });
    socket.on('disconnect', () => {
      if (this.socket !== socket) return;
      const wasJoined = this.joined;
      this.joined = false;
      if (!settled) return fail('disconnected');
      if (wasJoined && !this.stopped) {
        this.sample('disconnect', 'long');
        // Reconnect at once, to the next connector: the one we were on may be gone.
        this.endpointIndex++;
        this.connectLong();
      }
    });
  }

  private onConnectFailed(why: string): void {
    this.closeSocket();
    this.failures++;
    this.sample('connect_failed', 'long');
    if (this.stopped) return;
    if (this.failures >= this.options.maxFailures) {
      this.degradations++;
      this.failures = 0;
      this.sample('degraded', 'short');
      this.setMode('short', `degraded: ${why}`);
      this.startPolling();
      this.scheduleLongRetry();
      return;
    }
    this.endpointIndex++;
    // The next connector, soon; what arrives meanwhile comes with the join (the cursor).
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = null;
      this.connectLong();
    }, 200 * this.failures);
  }

  private closeSocket(): void {
    const socket = this.socket;
    this.socket = null;
    this.joined = false;
    if (socket) {
      socket.removeAllListeners();
      socket.close();
    }
  }

  // --- polling -----------------------------------------------------------------------------

  private startPolling(): void {
    if (this.polling || this.stopped) return;
    this.polling = true;
    void this.pollOnce();
  }

  private stopPolling(): void {
    this.polling = false;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  private async pollOnce(): Promise<void> {
    if (!this.polling) return;
    let wait = this.pollIntervalMs;
    try {
      const q = new URLSearchParams({ types: (this.options.types ?? DEFAULT_TYPES).join(',') });
      const cursor = this.cursor;
      if (cursor) q.set('cursor', cursor);
      const response = await this.fetch(`${this.options.baseUrl}/v1/rooms/${encodeURIComponent(this.options.roomId)}/messages?${q.toString()}`);
      if (!response.ok) throw new ClientError('poll_failed', `Poll answered ${response.status}.`, response.status);
      const page = (await response.json()) as { messages: Message[]; cursor: string; retryAfterMs: number };
      if (!this.polling) return;
      this.deliver(page.messages, 'short');
      this.mergeCursor(page.cursor);
      wait = Math.max(200, page.retryAfterMs ?? this.pollIntervalMs);
      if (this.currentMode !== 'short' && !this.joined) this.setMode('short', 'polling');
    } catch {
      this.sample('poll_failed', 'short');
      wait = Math.min(this.pollIntervalMs * 2, 10_000);
    }
    if (this.polling) this.pollTimer = setTimeout(() => void this.pollOnce(), wait);
  }

  // --- delivery ----------------------------------------------------------------------------

  private mergeCursor(text: string): void {
    for (const [type, seq] of decodeCursor(text)) {
      if (seq > (this.seqs.get(type) ?? 0)) this.seqs.set(type, seq);
    }
  }

  /** Once each, in seq order per type, whichever mode brought them. */
  private deliver(messages: Message[], mode: Mode): void {
    if (messages.length === 0) return;
    const sorted = [...messages].sort((a, b) => (a.type === b.type ? a.seq - b.seq : a.type < b.type ? -1 : 1));
    const out: Message[] = [];
    const now = Date.now();
    for (const m of sorted) {
      if (this.seen.has(m.id) || m.seq <= (this.seqs.get(m.type) ?? 0)) continue;
      this.seqs.set(m.type, m.seq);
      this.seen.add(m.id);
      this.seenOrder.push(m.id);
      if (this.seenOrder.length > SEEN_IDS) this.seen.delete(this.seenOrder.shift() as string);
      out.push(m);
      if (++this.delivered % this.options.latencySampleEvery === 0) this.sample('delivery', mode, Math.max(0, now - m.ts));
    }
    if (out.length > 0) this.options.onMessages?.(out);
  }

  // --- modes and metrics -------------------------------------------------------------------

  private setMode(mode: Mode, reason: string, endpoint?: string): void {
    const changed = this.currentMode !== mode || (endpoint !== undefined && endpoint !== this.currentEndpoint);
    this.currentMode = mode;
    if (endpoint !== undefined) this.currentEndpoint = endpoint;
    if (changed || reason.startsWith('degraded')) this.options.onMode?.(mode, reason, endpoint);
  }

  private sample(kind: MetricKind, mode: Mode, ms?: number): void {
    if (this.options.metricsIntervalMs <= 0) return;
    this.samples.push(ms === undefined ? { kind, mode } : { kind, mode, ms: Math.min(Math.round(ms), 600_000) });
    if (this.samples.length >= 100) void this.flushMetrics();
  }

  private async flushMetrics(): Promise<void> {
    if (this.samples.length === 0) return;
    const samples = this.samples.splice(0, 100);
    try {
      await this.fetch(`${this.options.baseUrl}/v1/client-metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sdk: 'danmaku-js/0.1', samples }),
      });
    } catch {
      // Metrics are best effort; never let them hurt the viewer.
    }
  }
}

export function createClient(options: ClientOptions): DanmakuClient {
  return new DanmakuClient(options);
}
