import { createAuth } from '@danmaku/auth';
import { MemoryBus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import { createIngest } from '@danmaku/ingest';
import { buildFront } from '@danmaku/front';
import type { Logger } from '@danmaku/observability';
import { redisAnnouncer, startProcessor } from '@danmaku/processor';
import { openStore } from '@danmaku/store';

export interface Standalone {
  /** http://host:port of the front. */
  url: string;
  stop(): Promise<void>;
}

/** Every role in one process over the in-memory bus: the embedded default. */
export async function startStandalone(config: Config, logger: Logger): Promise<Standalone> {
  const { store, close: closeStore } = await openStore(config, 'standalone');
  const bus = new MemoryBus({ partitions: config.partitions, logger });
  const processor = await startProcessor({
    bus,
    store,
    topic: config.topic,
    logger,
    batchSize: config.processorBatch,
    announce: redisAnnouncer(store.write),
  });
  const front = buildFront({ config, store, bus, auth: createAuth(config.jwtSecret), ingest: createIngest({ bus, topic: config.topic }) }, logger);
  await front.listen({ host: config.host, port: config.port });
  const address = front.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    url: `http://${config.host}:${port}`,
    async stop() {
      await front.close();
      // Let the processor drain what the front accepted before the bus goes away.
      const deadline = Date.now() + 5000;
      while ((await processor.lag()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await bus.close();
      await closeStore();
    },
  };
}
