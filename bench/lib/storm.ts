/**
 * A connector's death as its clients live it: socket.io viewers that come back the way the SDK
 * does (its own Routing from `@danmaku/client/routing`: `GET /v1/route` per viewer, the next
 * connector of the viewer's ranking after a loss, exponential backoff with full jitter, the join
 * carrying the viewer's cursor so the connector catches it up), each from a source address of its
 * own so 10,000 of them fit on one machine. One difference from the SDK: after three failed
 * connects the SDK would poll for a while; these keep trying the long connection, so every
 * reconnect is counted. Used by the reconnect-storm bench and its test.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { Routing, resolveOptions } from '@danmaku/client/routing';
import { httpCall, type AnyAgent } from './load/clients.js';

export interface StormViewerOptions {
  /** Where `GET /v1/route` is answered (a front or the router). */
  baseUrl: string;
  uid: string;
  roomId: string;
  /** The agent of this viewer's source address, for its route requests. */
  agent: AnyAgent;
  localAddress?: string;
  connectTimeoutMs?: number;
}

export interface StormEvents {
  /** Joined on `endpoint`: the first time, or back after a loss. */
  up(endpoint: string, at: number): void;
  /** The connection to `endpoint` went away. */
  lost(endpoint: string, at: number): void;
  /** A connect or join that did not work (the next connector is tried after a backoff). */
  failed(endpoint: string, reason: string): void;
  /** Messages that arrived (live or caught up). */
  messages?(count: number): void;
}

/** The route request through node:http (fetch cannot choose its source address); only what Routing reads. */
function fetchVia(agent: AnyAgent): typeof fetch {
  const call = async (input: string | URL | Request): Promise<Response> => {
    const answer = await httpCall(String(input), agent, { timeoutMs: 10_000 });
    return new Response(answer.body, { status: answer.status, headers: { 'content-type': 'application/json' } });
  };
  return call as typeof fetch;
}

export class StormViewer {
  private readonly routing: Routing;
  private socket: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private cursor: string | undefined;
  private stopped = false;
  /** The connector it is joined on, or null. */
  endpoint: string | null = null;

  constructor(
    private readonly options: StormViewerOptions,
    private readonly events: StormEvents,
  ) {
    this.routing = new Routing(resolveOptions({ baseUrl: options.baseUrl, uid: options.uid, roomId: options.roomId, metricsIntervalMs: 0, fetch: fetchVia(options.agent) }));
  }

  /** Asks the route and connects; resolves once the route answered (the join follows). */
  async start(): Promise<void> {
    const answer = await this.routing.ask();
    if (answer.mode !== 'long' || answer.endpoints.length === 0) throw new Error(`the route said ${answer.mode} (${answer.reason})`);
    this.connect();
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.drop();
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = null;
    this.endpoint = null;
    if (socket) {
      socket.removeAllListeners();
      socket.close();
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.routing.endpoint;
    const timeoutMs = this.options.connectTimeoutMs ?? 5000;
    // engine.io-client hands `localAddress` to its WebSocket; its option types do not list it.
    const settings: Partial<ManagerOptions & SocketOptions> & { localAddress?: string } = {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
    };
    const socket = io(url, settings);
    this.socket = socket;
    let settled = false;
    const fail = (reason: string): void => {
      if (settled || this.socket !== socket) return;
      settled = true;
      clearTimeout(watchdog);
      this.drop();
      this.events.failed(url, reason);
      this.routing.connectFailed();
      this.routing.next();
      this.later();
    };
    const watchdog = setTimeout(() => fail('timeout'), timeoutMs);
    socket.on('connect', () => {
      socket.timeout(timeoutMs).emit('join', { roomId: this.options.roomId, types: ['comment'], ...(this.cursor ? { cursor: this.cursor } : {}) }, (err: Error | null, ack?: { ok: boolean; cursor?: string; error?: { code: string } }) => {
        if (this.socket !== socket || settled) return;
        if (err || !ack?.ok) return fail(err ? 'join_timeout' : (ack?.error?.code ?? 'refused'));
        settled = true;
        clearTimeout(watchdog);
        if (ack.cursor) this.cursor = ack.cursor;
        this.endpoint = url;
        this.routing.connected();
        this.events.up(url, Date.now());
      });
    });
    socket.on('connect_error', (err: Error) => fail(err.message));
    socket.on('messages', (packet: { messages: unknown[]; cursor?: string }) => {
      if (packet.cursor) this.cursor = packet.cursor;
      this.events.messages?.(packet.messages.length);
    });
    // A draining connector: ask the route again at once, as the SDK does.
    socket.on('move', () => {
      if (this.socket !== socket) return;
      this.drop();
      this.events.lost(url, Date.now());
      void this.routing.ask().then(() => this.connect());
    });
    socket.on('disconnect', () => {
      if (this.socket !== socket) return;
      if (!settled) return fail('disconnected');
      this.drop();
      this.events.lost(url, Date.now());
      // As the SDK: to the next connector of the ranking, after a jittered backoff.
      this.routing.lost();
      this.routing.next();
      this.later();
    });
  }

  private later(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, this.routing.reconnectDelayMs());
  }
}

/** One viewer that lost the killed connector: when, and where and when it was back. */
export interface Comeback {
  lostAt: number;
  /** null: not back by the end. */
  backAt: number | null;
  endpoint: string | null;
  /** Connects that failed before it was back. */
  failures: number;
}

export interface StormSummary {
  /** Viewers that were on the killed connector. */
  moved: number;
  back: number;
  /** Kill to the last viewer back (null when some never came back). */
  allBackMs: number | null;
  /** Kill to back, per viewer: median and 99th percentile. */
  backP50Ms: number | null;
  backP99Ms: number | null;
  /** Reconnects per second: the busiest second, and the mean from the kill to the last one back. */
  reconnectsPerSecPeak: number;
  reconnectsPerSecMean: number;
  /** The busiest 100 ms, as a share of the viewers that moved (1 = all at once). */
  peak100msShare: number;
  /** Reconnects in each second after the kill. */
  perSecond: number[];
  /** Where the viewers that moved landed. */
  spread: Record<string, number>;
  failedConnects: number;
}

const quantile = (sorted: number[], q: number): number | null => (sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number));

/** Rates, spread and times of the comebacks after a connector was killed at `killedAt`. */
export function summarise(killedAt: number, comebacks: readonly Comeback[]): StormSummary {
  const back = comebacks.filter((c) => c.backAt !== null);
  const delays = back.map((c) => (c.backAt as number) - killedAt).sort((a, b) => a - b);
  const perSecond: number[] = [];
  const per100 = new Map<number, number>();
  for (const d of delays) {
    const s = Math.floor(d / 1000);
    while (perSecond.length <= s) perSecond.push(0);
    perSecond[s] = (perSecond[s] as number) + 1;
    const b = Math.floor(d / 100);
    per100.set(b, (per100.get(b) ?? 0) + 1);
  }
  const spread: Record<string, number> = {};
  for (const c of back) spread[c.endpoint as string] = (spread[c.endpoint as string] ?? 0) + 1;
  const last = delays.at(-1) ?? 0;
  return {
    moved: comebacks.length,
    back: back.length,
    allBackMs: back.length === comebacks.length && comebacks.length > 0 ? last : null,
    backP50Ms: quantile(delays, 0.5),
    backP99Ms: quantile(delays, 0.99),
    reconnectsPerSecPeak: Math.max(0, ...perSecond),
    reconnectsPerSecMean: last > 0 ? Math.round((back.length / (last / 1000)) * 10) / 10 : back.length,
    peak100msShare: comebacks.length > 0 ? Math.max(0, ...per100.values()) / comebacks.length : 0,
    perSecond,
    spread,
    failedConnects: comebacks.reduce((n, c) => n + c.failures, 0),
  };
}

export interface CommandCost {
  calls: number;
  /** Redis CPU spent on them, microseconds. */
  usec: number;
}

/** Calls and CPU per Redis command, from INFO commandstats. */
export async function commandStats(info: () => Promise<string>): Promise<Map<string, CommandCost>> {
  const stats = new Map<string, CommandCost>();
  for (const line of (await info()).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) stats.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

/** after - before, per command, the most called first (commands that did not move left out). */
export function commandDelta(before: Map<string, CommandCost>, after: Map<string, CommandCost>): Record<string, CommandCost> {
  const delta = [...after]
    .map(([cmd, a]) => [cmd, { calls: a.calls - (before.get(cmd)?.calls ?? 0), usec: a.usec - (before.get(cmd)?.usec ?? 0) }] as const)
    .filter(([, d]) => d.calls > 0);
  return Object.fromEntries(delta.sort((a, b) => b[1].calls - a[1].calls));
}
