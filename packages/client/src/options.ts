import { DEFAULT_POLL_TYPES, type Message, type MessageType, type RoomInfo } from '@danmaku/protocol';

export type Mode = 'long' | 'short';

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
  /**
   * Reconnects (after a lost connection or a failed connect) wait a random time between 0 and
   * reconnectBaseMs * 2^attempt, capped at reconnectMaxMs ("full jitter"), so the clients of a
   * connector that went away come back spread out instead of all at once.
   */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** Randomness and clock of the backoff, for tests. */
  random?: () => number;
  now?: () => number;
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

type Defaulted =
  | 'types'
  | 'connectTimeoutMs'
  | 'maxFailures'
  | 'longRetryMs'
  | 'longRetryMaxMs'
  | 'reconnectBaseMs'
  | 'reconnectMaxMs'
  | 'random'
  | 'now'
  | 'metricsIntervalMs'
  | 'latencySampleEvery'
  | 'fetch';

/** The options with every default filled in. */
export type ResolvedOptions = Omit<ClientOptions, Defaulted> & Required<Pick<ClientOptions, Defaulted>>;

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  return {
    connectTimeoutMs: 5000,
    maxFailures: 3,
    longRetryMs: 30_000,
    longRetryMaxMs: 5 * 60_000,
    reconnectBaseMs: 1000,
    reconnectMaxMs: 30_000,
    random: Math.random,
    now: Date.now,
    metricsIntervalMs: 30_000,
    latencySampleEvery: 20,
    ...options,
    types: options.types ?? [...DEFAULT_POLL_TYPES],
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    baseUrl: options.baseUrl.replace(/\/$/, ''),
  };
}
