/**
 * Routing: where and how to connect. The router (`GET /v1/route`) says long or short and names
 * the connectors; failed connects move to the next connector, and three in a row (maxFailures)
 * degrade the client to polling until it asks the router again, later each time.
 */
import type { RouteAnswer } from '@danmaku/protocol';
import { ClientError, type ResolvedOptions } from './options.js';

export type { RouteAnswer };
/** With the defaults filled in: load tools drive Routing alone (`@danmaku/client/routing`) as the SDK does. */
export { resolveOptions } from './options.js';

/** A connection up this long was stable: the next drop starts the backoff again from its first step. */
export const STABLE_MS = 10_000;

/** Exponential backoff with full jitter: uniformly random in [0, min(maxMs, baseMs * 2^attempt)). */
export function fullJitterMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

export class Routing {
  /** The poll interval the router asked for; kept when the router cannot be reached. */
  pollIntervalMs = 2000;
  private endpoints: string[] = [];
  private index = 0;
  private failures = 0;
  private degradations = 0;
  /** Reconnects since the last stable connection: the backoff's exponent. */
  private attempts = 0;
  private upSince = 0;

  constructor(
    private readonly options: Pick<
      ResolvedOptions,
      'baseUrl' | 'routerUrl' | 'uid' | 'deviceId' | 'version' | 'fetch' | 'maxFailures' | 'longRetryMs' | 'longRetryMaxMs' | 'reconnectBaseMs' | 'reconnectMaxMs' | 'random' | 'now'
    >,
  ) {}

  /** Asks the router. With no router (down, or not served at this address) the answer is to poll the front. */
  async ask(): Promise<RouteAnswer> {
    let answer: RouteAnswer;
    try {
      const q = new URLSearchParams();
      if (this.options.uid) q.set('uid', this.options.uid);
      if (this.options.deviceId) q.set('deviceId', this.options.deviceId);
      if (this.options.version) q.set('version', this.options.version);
      const response = await this.options.fetch(`${(this.options.routerUrl ?? this.options.baseUrl).replace(/\/$/, '')}/v1/route?${q.toString()}`);
      if (!response.ok) throw new ClientError('route_failed', `The router answered ${response.status}.`, response.status);
      answer = (await response.json()) as RouteAnswer;
    } catch {
      answer = { mode: 'short', endpoints: [], pollIntervalMs: this.pollIntervalMs, reason: 'router_unavailable' };
    }
    this.pollIntervalMs = answer.pollIntervalMs;
    if (answer.mode === 'long' && answer.endpoints.length > 0) {
      this.endpoints = answer.endpoints;
      this.index = 0;
    }
    return answer;
  }

  /** The connector to try now. */
  get endpoint(): string {
    return this.endpoints[this.index % this.endpoints.length] as string;
  }

  /** Moves on to the next connector: the current one failed, or went away. */
  next(): void {
    this.index++;
  }

  /** Has the client ever given up on long connections? */
  get degraded(): boolean {
    return this.degradations > 0;
  }

  connected(): void {
    this.failures = 0;
    this.upSince = this.options.now();
  }

  /** The connection went away; one that had been up a while starts the backoff over. */
  lost(): void {
    if (this.options.now() - this.upSince >= STABLE_MS) this.attempts = 0;
  }

  /** Counts a failed connect; true when it was one too many and the client should poll now. */
  connectFailed(): boolean {
    this.failures++;
    if (this.failures < this.options.maxFailures) return false;
    this.degradations++;
    this.failures = 0;
    return true;
  }

  /** How long to wait before the next connect (after a lost connection or a failed connect); counts the attempt. */
  reconnectDelayMs(): number {
    return fullJitterMs(this.attempts++, this.options.reconnectBaseMs, this.options.reconnectMaxMs, this.options.random);
  }

  /** How long to poll before asking the router again: doubling with each degradation, up to longRetryMaxMs. */
  get longRetryDelayMs(): number {
    return Math.min(this.options.longRetryMs * 2 ** Math.max(0, this.degradations - 1), this.options.longRetryMaxMs);
  }

  /** A fresh start for long connections (asking the router again). */
  resetFailures(): void {
    this.failures = 0;
  }
}
