import { randomBytes } from 'node:crypto';
import { openReplay, WATERMARK_FRESH_MS, type ReplayStack } from '@danmaku/archive';
import { startArchiver } from '@danmaku/archiver';
import { createAuth } from '@danmaku/auth';
import { MemoryBus, type Consumer } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import { buildFront } from '@danmaku/front';
import type { Moderation } from '@danmaku/moderation';
import { createLogger } from '@danmaku/observability';
import { startProcessor } from '@danmaku/processor';
import { openSend } from '@danmaku/send';
import { openStore, type RedisStore } from '@danmaku/store';
import { waitFor } from '@danmaku/testkit';
import type { FastifyInstance } from '@danmaku/http';

/**
 * The front with processor and archiver over a memory bus, lives, replay and moderation, wired
 * the way standalone wires it but with its parts in reach of a test
 * (e.g. to empty the local replay cache and see the next tier answer).
 */
export interface LivesStack {
  url: string;
  app: FastifyInstance;
  store: RedisStore;
  replay: ReplayStack;
  moderation: Moderation;
  processor: Consumer;
  archiver: Consumer;
  /** Resolves once the processor and the archiver have taken everything sent so far. */
  drained(timeoutMs?: number): Promise<void>;
  /** The archivers' watermark replay reads (ms; null: none reported). */
  archivedThrough(): Promise<number | null>;
  stop(): Promise<void>;
}

export async function startLivesStack(config: Config): Promise<LivesStack> {
  const logger = createLogger('test', config.logLevel);
  const { store, close: closeStore } = await openStore(config, 'test');
  const bus = new MemoryBus({ partitions: config.partitions, logger });
  const processor = await startProcessor({ bus, store, topic: config.topic, logger, batchSize: config.processorBatch });
  const sendPath = await openSend(config, { store, bus, logger, name: 'test' });
  const { pipeline: send, switches, moderation } = sendPath;
  const progressScope = `test-${randomBytes(5).toString('hex')}/${config.topic}`;
  const replay = openReplay(config, { redis: store.write, states: sendPath.lives, logger, name: 'test', progressScope });
  const archiver = await startArchiver({ bus, archive: replay.archive, topic: config.topic, logger, batchSize: config.archiverBatch, progressScope, progressEveryMs: 200 });
  const app = buildFront({ config, store, bus, auth: createAuth(config.jwtSecret), send, switches, replay, moderation }, logger);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const drained = async (timeoutMs = 20_000): Promise<void> => {
    await waitFor('the processor and the archiver to drain', async () => (await processor.lag()) + (await archiver.lag()) === 0, timeoutMs, 20);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    store,
    replay,
    moderation,
    processor,
    archiver,
    drained,
    archivedThrough: () => replay.archive.archivedThrough(progressScope, WATERMARK_FRESH_MS),
    async stop() {
      await app.close();
      await drained(5000).catch(() => undefined);
      await bus.close();
      await replay.close();
      await sendPath.close();
      await closeStore();
    },
  };
}

/** Tiny HTTP client for the tests: JSON in, status + JSON + headers out. */
export async function call(
  url: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

/** A counter's value from /metrics, summed over the series that match `labels`. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
