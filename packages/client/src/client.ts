import type { Message } from '@danmaku/protocol';
import { Delivery } from './delivery.js';
import { sendOverHttp } from './http.js';
import { LongTransport } from './long.js';
import { Metrics } from './metrics.js';
import { ClientError, resolveOptions, type ClientOptions, type Mode, type ResolvedOptions } from './options.js';
import { Routing } from './routing.js';
import { PollTransport } from './short.js';
import type { SendBody, SendResult, TransportEvents } from './transport.js';

/**
 * The client: asks routing how to connect, runs the transport it says (both at once while a
 * long connection is being tried after polling), and hands what they bring to delivery, so
 * `onMessages` sees each message once and in order whatever the mode.
 */
export class DanmakuClient {
  private readonly options: ResolvedOptions;
  private readonly routing: Routing;
  private readonly delivery = new Delivery();
  private readonly metrics: Metrics;
  private long: LongTransport | null = null;
  private short: PollTransport | null = null;
  /** One timer for "try long again": the next connector soon, or the router after polling a while. */
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private currentMode: Mode | null = null;
  private currentEndpoint: string | null = null;

  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.routing = new Routing(this.options);
    this.metrics = new Metrics({
      baseUrl: this.options.baseUrl,
      fetch: this.options.fetch,
      intervalMs: this.options.metricsIntervalMs,
      sampleEvery: this.options.latencySampleEvery,
    });
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
    return this.delivery.cursor;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.metrics.start();
    await this.route();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopPolling();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closeLong();
    await this.metrics.stop();
  }

  /** Sends over the long connection when there is one (same path as HTTP on the server), else HTTP. */
  async send(body: SendBody): Promise<SendResult> {
    const token = this.options.token;
    if (!token) throw new ClientError('missing_token', 'Sending needs a token.');
    const viaSocket = this.long?.ready ? await this.long.send(body) : null;
    return viaSocket ?? (await sendOverHttp(this.options, token, body));
  }

  // --- routing -----------------------------------------------------------------------------

  private async route(): Promise<void> {
    if (this.stopped) return;
    const answer = await this.routing.ask();
    if (this.stopped) return;
    if (answer.mode === 'long' && answer.endpoints.length > 0) {
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
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.routing.resetFailures();
      void this.route();
    }, this.routing.longRetryDelayMs);
  }

  // --- long connection ---------------------------------------------------------------------

  private connectLong(): void {
    if (this.stopped) return;
    this.closeLong();
    const url = this.routing.endpoint;
    const transport = new LongTransport(
      { url, roomId: this.options.roomId, types: this.options.types, token: this.options.token, connectTimeoutMs: this.options.connectTimeoutMs },
      {
        ...this.sink('long'),
        up: (ms) => {
          this.routing.connected();
          // What polling would bring now comes over the socket, the catch-up included.
          this.stopPolling();
          if (this.routing.degraded && this.currentMode === 'short') this.metrics.sample('long_restored', 'long');
          this.metrics.sample('connect', 'long', ms);
          this.setMode('long', 'connected', url);
        },
        failed: (reason) => {
          this.forget(transport);
          this.onConnectFailed(reason);
        },
        lost: () => {
          this.forget(transport);
          if (this.stopped) return;
          this.metrics.sample('disconnect', 'long');
          // To the next connector (the one we were on may be gone), after a jittered backoff: every
          // client of a dead connector loses it at the same moment.
          this.routing.lost();
          this.routing.next();
          this.reconnectLater();
        },
        moved: () => {
          this.forget(transport);
          if (this.stopped) return;
          this.metrics.sample('disconnect', 'long');
          // The connector is draining and spreads its clients' moves itself: ask the router now,
          // it no longer offers that connector; the join carries the cursor.
          void this.route();
        },
        refused: (error) => {
          this.forget(transport);
          this.options.onError?.(error);
        },
      },
    );
    this.long = transport;
    transport.open();
  }

  private onConnectFailed(why: string): void {
    const degrade = this.routing.connectFailed();
    this.metrics.sample('connect_failed', 'long');
    if (this.stopped) return;
    if (degrade) {
      this.metrics.sample('degraded', 'short');
      this.setMode('short', `degraded: ${why}`);
      this.startPolling();
      this.scheduleLongRetry();
      return;
    }
    this.routing.next();
    // The next connector, soon; what arrives meanwhile comes with the join (the cursor).
    this.reconnectLater();
  }

  private reconnectLater(): void {
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = null;
      this.connectLong();
    }, this.routing.reconnectDelayMs());
  }

  private forget(transport: LongTransport): void {
    if (this.long === transport) this.long = null;
  }

  private closeLong(): void {
    this.long?.close();
    this.long = null;
  }

  // --- polling -----------------------------------------------------------------------------

  private startPolling(): void {
    if (this.short || this.stopped) return;
    this.short = new PollTransport(
      {
        baseUrl: this.options.baseUrl,
        roomId: this.options.roomId,
        fetch: this.options.fetch,
        types: this.options.types,
        token: this.options.token,
        intervalMs: () => this.routing.pollIntervalMs,
      },
      {
        ...this.sink('short'),
        up: () => {
          if (this.currentMode !== 'short' && !this.long?.ready) this.setMode('short', 'polling');
        },
        failed: () => this.metrics.sample('poll_failed', 'short'),
        lost: () => undefined,
        moved: () => undefined,
        refused: (error) => this.options.onError?.(error),
      },
    );
    this.short.open();
  }

  private stopPolling(): void {
    this.short?.close();
    this.short = null;
  }

  // --- what both transports bring ----------------------------------------------------------

  private sink(mode: Mode): Pick<TransportEvents, 'cursor' | 'messages' | 'advance' | 'rewind' | 'deleted' | 'room'> {
    return {
      cursor: () => this.delivery.cursor,
      messages: (messages) => this.deliver(messages, mode),
      advance: (cursor) => this.delivery.advance(cursor),
      rewind: (cursor) => this.delivery.rewind(cursor),
      deleted: (ids) => this.options.onDeleted?.(ids),
      room: (info) => this.options.onRoom?.(info),
    };
  }

  private deliver(messages: Message[], mode: Mode): void {
    const fresh = this.delivery.accept(messages);
    if (fresh.length === 0) return;
    this.metrics.delivered(fresh, mode);
    this.options.onMessages?.(fresh);
  }

  private setMode(mode: Mode, reason: string, endpoint?: string): void {
    const changed = this.currentMode !== mode || (endpoint !== undefined && endpoint !== this.currentEndpoint);
    this.currentMode = mode;
    if (endpoint !== undefined) this.currentEndpoint = endpoint;
    if (changed || reason.startsWith('degraded')) this.options.onMode?.(mode, reason, endpoint);
  }
}
