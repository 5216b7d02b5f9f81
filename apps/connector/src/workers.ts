/**
 * A connector of N processes (DANMAKU_CONNECTOR_WORKERS), the way goim's comet uses every core:
 * a primary (node:cluster) owns the ports and forks N workers, each a whole connector node (its own
 * sessions, its own registration with the pushers), so one address holds N times what one process's
 * open-files limit allows.
 *
 * - CONNECTOR_PORT (socket.io, the Bilibili WebSocket at /sub, /metrics, /readyz): the primary
 *   listens and hands each connection to a worker with @socket.io/sticky, by the engine.io session
 *   id of its first request (long-polling sends every request of a session to the worker that holds
 *   it), round robin for a new one.
 * - DANMAKU_BILI_TCP_PORT: each worker listens, and node:cluster shares the one listening socket
 *   (the primary accepts and hands connections round robin).
 * - /readyz of any worker: ready when every worker is up and passes its own checks; /metrics: the
 *   sum over the primary and every worker (prom-client's cluster aggregation).
 * - A worker that dies is forked again; SIGTERM to the primary drains every worker
 *   (DANMAKU_DRAIN_MS) and exits once they all have.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server as HttpServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setupMaster, setupWorker } from '@socket.io/sticky';
import type { Config } from '@danmaku/config';
import { isDraining, LISTEN_BACKLOG } from '@danmaku/http';
import { processMetrics, sumMetrics, useMetricsSource, type Logger, type ProcessMetrics } from '@danmaku/observability';
import { releaseHeld } from './held.js';
import type { ConnectorServer } from './socketio.js';

/** How a worker learns where the primary listens (cluster.fork's environment). */
const PRIMARY_URL_ENV = 'DANMAKU_CONNECTOR_PRIMARY_URL';
type Question = 'ready' | 'metrics';
/**
 * A question between the primary and a worker that gets no answer within this counts as "no":
 * readiness soon (probes time out at a second or two), metrics later (a worker busy taking a
 * crowd answers late, and a sum without it would be wrong).
 */
const ASK_TIMEOUT_MS: Record<Question, number> = { ready: 1500, metrics: 10_000 };
/** A replacement that dies before it serves waits this long (doubled each time, at most a minute) before the next. */
const RESTART_BACKOFF_MS = 1000;

/** DANMAKU_CONNECTOR_WORKERS as a count: `auto` is one per CPU. */
export function workerCount(setting: Config['connectorWorkers']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** Messages of this module on the cluster's IPC channel (sticky's have types of their own). */
type Envelope =
  | { t: 'danmaku:up'; nodeId: string }
  | { t: 'danmaku:ask'; id: number; what: Question }
  | { t: 'danmaku:answer'; id: number; ready?: boolean; metrics?: string | ProcessMetrics; error?: string };

function isEnvelope(message: unknown): message is Envelope {
  return typeof message === 'object' && message !== null && typeof (message as { t?: unknown }).t === 'string' && (message as { t: string }).t.startsWith('danmaku:');
}

/** Questions sent over one IPC channel, answered by id; unanswered ones resolve as `fallback` after ASK_TIMEOUT_MS. */
class Asker {
  private next = 0;
  /** Each question's ending: with the answer, or null (no answer: its fallback). */
  private readonly pending = new Map<number, (answer: (Envelope & { t: 'danmaku:answer' }) | null) => void>();

  constructor(private readonly send: (message: Envelope) => boolean) {}

  ask<T>(what: Question, read: (answer: Envelope & { t: 'danmaku:answer' }) => T, fallback: T): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve) => {
      const end = (answer: (Envelope & { t: 'danmaku:answer' }) | null): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(answer ? read(answer) : fallback);
      };
      const timer = setTimeout(() => end(null), ASK_TIMEOUT_MS[what]);
      this.pending.set(id, end);
      try {
        if (!this.send({ t: 'danmaku:ask', id, what })) end(null);
      } catch {
        end(null);
      }
    });
  }

  answered(answer: Envelope & { t: 'danmaku:answer' }): void {
    this.pending.get(answer.id)?.(answer);
  }

  /** The other side is gone: every open question ends with its fallback now. */
  abandon(): void {
    for (const end of [...this.pending.values()]) end(null);
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** What a worker's connector role needs from its primary. */
export interface WorkerSeat {
  /** The URL the primary listens on (CONNECTOR_PORT): this worker's server gets its connections from it. */
  readonly url: string;
  /** The whole connector is ready: every worker up and passing its own checks. */
  clusterReady(): Promise<boolean>;
  /**
   * This worker serves from now on: its socket.io server takes the connections the primary hands
   * over, and it answers the primary's questions with its own `checks`.
   */
  serve(options: { io: ConnectorServer; nodeId: string; checks: Record<string, () => Promise<boolean> | boolean> }): void;
}

/**
 * A worker's link to its primary. Connections the primary handed over before the role has its
 * socket.io server were held (held.ts) and are served once it has.
 */
export function joinPrimary(): WorkerSeat {
  const url = process.env[PRIMARY_URL_ENV];
  if (!cluster.isWorker || !url) throw new Error(`a connector worker is forked by its primary (${PRIMARY_URL_ENV} unset)`);
  const send = (message: Envelope): boolean => process.send?.(message) ?? false;
  const asker = new Asker(send);
  let checks: Record<string, () => Promise<boolean> | boolean> = {};
  const localReady = async (): Promise<boolean> => {
    if (isDraining()) return false;
    const results = await Promise.all(Object.values(checks).map(async (check) => Promise.resolve().then(check).catch(() => false)));
    return results.every(Boolean);
  };
  process.on('message', (message: unknown) => {
    if (!isEnvelope(message)) return;
    if (message.t === 'danmaku:answer') asker.answered(message);
    if (message.t !== 'danmaku:ask') return;
    const reply = (answer: Omit<Envelope & { t: 'danmaku:answer' }, 't' | 'id'>): void => void send({ t: 'danmaku:answer', id: message.id, ...answer });
    if (message.what === 'ready') void localReady().then((ready) => reply({ ready }));
    else processMetrics().then((metrics) => reply({ metrics }), (err: unknown) => reply({ error: String(err) }));
  });
  // This worker's /metrics answers for the whole connector.
  useMetricsSource(async () => {
    const answer = await asker.ask('metrics', (a) => a, null);
    if (!answer || typeof answer.metrics !== 'string') throw new Error(`the connector's primary gave no metrics${answer?.error ? `: ${answer.error}` : ''}`);
    return answer.metrics;
  });
  return {
    url,
    clusterReady: () => asker.ask('ready', (a) => a.ready === true, false),
    serve({ io, nodeId, checks: own }) {
      checks = own;
      setupWorker(io);
      for (const [message, handle] of releaseHeld()) process.emit('message', message, handle);
      send({ t: 'danmaku:up', nodeId });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Primary side

interface Seat {
  worker: Worker;
  /** Its connector node id, once it serves. */
  nodeId: string | null;
  asker: Asker;
}

export interface PrimaryOptions {
  config: Pick<Config, 'host' | 'connectorPort' | 'drainMs'>;
  logger: Logger;
  workers: number;
}

/**
 * The primary: listens on CONNECTOR_PORT, forks `workers` connector workers, keeps that many
 * running, and answers their questions about the whole. Resolves once every worker serves; a
 * worker that fails before the first start completes stops the lot (exit 1).
 */
export async function runPrimary(options: PrimaryOptions): Promise<void> {
  const { config, logger, workers: count } = options;
  // held.ts goes first in every worker (require loads an ES module synchronously, before any IPC
  // message is read; the worker's own import of it later gets the same instance).
  const held = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './held.ts' : './held.js', import.meta.url));
  // sticky sends the bytes it read off a connection as a Buffer: the advanced serialization keeps them bytes.
  cluster.setupPrimary({ serialization: 'advanced', execArgv: [...process.execArgv, '--require', held] });
  const server: HttpServer = createServer();
  // Round robin: "least-connection" counts socket.io sessions only, so it would put every Bilibili
  // WebSocket on one worker.
  setupMaster(server, { loadBalancingMethod: 'round-robin' });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.connectorPort, host: config.host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const address = server.address();
  const url = `http://${config.host}:${typeof address === 'object' && address ? address.port : config.connectorPort}`;

  const seats = new Map<number, Seat>();
  let started = false;
  let stopping = false;
  let failuresInRow = 0;
  let announceStarted: () => void = () => undefined;
  let failStart: (err: Error) => void = () => undefined;
  const allUp = new Promise<void>((resolve, reject) => {
    announceStarted = resolve;
    failStart = reject;
  });
  const serving = (): Seat[] => [...seats.values()].filter((s) => s.nodeId !== null && s.worker.isConnected());

  const fork = (): void => {
    const worker = cluster.fork({ [PRIMARY_URL_ENV]: url });
    // A send to a worker that just died fails on its channel: its exit says so, the primary goes on.
    worker.on('error', (err) => logger.warn({ err, pid: worker.process.pid }, 'connector worker channel error'));
    seats.set(worker.id, { worker, nodeId: null, asker: new Asker((m) => worker.send(m)) });
  };

  const readyAll = async (): Promise<boolean> => {
    if (stopping) return false;
    const up = serving();
    if (up.length < count) return false;
    const answers = await Promise.all(up.map((s) => s.asker.ask('ready', (a) => a.ready === true, false)));
    return answers.every(Boolean);
  };
  const metricsAll = async (): Promise<string> => {
    const parts = await Promise.all(serving().map((s) => s.asker.ask('metrics', (a) => (Array.isArray(a.metrics) ? a.metrics : null), null)));
    return sumMetrics([await processMetrics(), ...parts.filter((p): p is ProcessMetrics => p !== null)]);
  };

  cluster.on('message', (worker, message: unknown) => {
    if (!isEnvelope(message)) return;
    const seat = seats.get(worker.id);
    if (!seat) return;
    if (message.t === 'danmaku:answer') seat.asker.answered(message);
    if (message.t === 'danmaku:up') {
      seat.nodeId = message.nodeId;
      failuresInRow = 0;
      logger.info({ pid: worker.process.pid, nodeId: message.nodeId }, 'connector worker serves');
      if (!started && serving().length === count) {
        started = true;
        announceStarted();
      }
    }
    if (message.t === 'danmaku:ask') {
      const reply = (answer: Omit<Envelope & { t: 'danmaku:answer' }, 't' | 'id'>): void => void (worker.isConnected() && worker.send({ t: 'danmaku:answer', id: message.id, ...answer }));
      if (message.what === 'ready') void readyAll().then((ready) => reply({ ready }));
      else metricsAll().then((metrics) => reply({ metrics }), (err: unknown) => reply({ error: String(err) }));
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const seat = seats.get(worker.id);
    seats.delete(worker.id);
    seat?.asker.abandon();
    if (stopping || !seat) return;
    if (!started) {
      failStart(new Error(`a connector worker (pid ${worker.process.pid}) exited before the connector started (code ${code}, signal ${signal})`));
      return;
    }
    // A replacement that never served (Redis down at its start, say) is not forked again in a tight loop.
    const delay = seat.nodeId === null ? Math.min(60_000, RESTART_BACKOFF_MS * 2 ** failuresInRow++) : 0;
    logger.warn({ pid: worker.process.pid, nodeId: seat.nodeId, code, signal, delayMs: delay }, 'connector worker died; forking a replacement');
    setTimeout(() => {
      if (!stopping) fork();
    }, delay).unref();
  });

  /** Every worker drains (SIGTERM) or stops at once (SIGINT); the primary exits once they all have. */
  const stopAll = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal: every worker stops at once.
      for (const seat of seats.values()) seat.worker.process.kill('SIGINT');
      return;
    }
    stopping = true;
    logger.info({ signal, workers: seats.size }, signal === 'SIGTERM' ? 'draining every connector worker' : 'stopping every connector worker');
    // Each worker bounds its own drain and stop; this bounds the lot, with a margin for their exits.
    setTimeout(() => {
      logger.error('connector workers did not exit in time; killing them');
      for (const seat of seats.values()) seat.worker.process.kill('SIGKILL');
      process.exit(1);
    }, config.drainMs + 20_000).unref();
    const exited = [...seats.values()].map((seat) => new Promise<void>((resolve) => (seat.worker.isDead() ? resolve() : seat.worker.once('exit', () => resolve()))));
    for (const seat of seats.values()) seat.worker.process.kill(signal);
    void Promise.all(exited).then(() => {
      server.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stopAll('SIGTERM'));
  process.on('SIGINT', () => stopAll('SIGINT'));

  for (let i = 0; i < count; i++) fork();
  try {
    await allUp;
  } catch (err) {
    stopping = true;
    for (const seat of seats.values()) seat.worker.process.kill('SIGKILL');
    throw err;
  }
  // Tests and scripts wait for this line (each worker prints its own `connector NODE listening on`).
  process.stdout.write(`connector primary of ${count} workers listening on ${url} (pid ${process.pid}; nodes ${serving().map((s) => s.nodeId).join(',')})\n`);
}
