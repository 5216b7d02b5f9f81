import { randomBytes } from 'node:crypto';
import { createAuth } from '@danmaku/auth';
import { MemoryBus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import { buildFront } from '@danmaku/front';
import type { Logger } from '@danmaku/observability';
import { processorSettings, redisAnnouncer, startProcessor } from '@danmaku/processor';
import { openStore } from '@danmaku/store';
import { startConnector, type Connector } from '@danmaku/connector';
import { pusherSettings, startPusher } from '@danmaku/pusher';
import { routerRoutes } from '@danmaku/router';
import { startArchiver } from '@danmaku/archiver';
import { openWritePath } from '@danmaku/write-path';

export interface Standalone {
  /** http://host:port of the front. */
  url: string;
  /** The embedded connector (socket.io on the front's port), unless started without one. */
  connector: Connector | null;
  stop(): Promise<void>;
}

export interface StandaloneOptions {
  /**
   * Run a connector on the front's HTTP server (default). Tests that want every connector in a
   * process of its own (to kill it) turn it off; router and pusher always run.
   */
  connector?: boolean;
}

/** Every role in one process over the in-memory bus: the embedded default. */
export async function startStandalone(config: Config, logger: Logger, options: StandaloneOptions = {}): Promise<Standalone> {
  const { store, close: closeStore } = await openStore(config, 'standalone');
  const bus = new MemoryBus({ partitions: config.partitions, logger });
  const processor = await startProcessor({ bus, store, logger, announce: redisAnnouncer(store.write), ...processorSettings(config) });
  // The archiver is the second consumer group, registered before anything is sent (the memory
  // bus starts a new group at the end). The write path: switches, moderation, live stamp, ingest.
  // Its archiver is the only one behind its own in-memory bus: a watermark scope of its own.
  const progressScope = `standalone-${randomBytes(5).toString('hex')}/${config.topic}`;
  const writePath = await openWritePath(config, { store, bus, logger, name: 'standalone', progressScope });
  const { ingest, switches, replay, moderation } = writePath;
  replay.archive.ready().catch((err: unknown) => logger.warn({ err }, 'MySQL not reachable yet; archiving retries until it is'));
  const archiver = await startArchiver({ bus, archive: replay.archive, topic: config.topic, logger, batchSize: config.archiverBatch, lingerMs: config.archiverLingerMs, progressScope });
  const auth = createAuth(config.jwtSecret);
  const front = buildFront({ config, store, bus, auth, ingest, switches, replay, moderation }, logger);
  // Long connections (issue 4): GET /v1/route on the front's port, the pusher, and a connector
  // whose socket.io shares the front's HTTP server, so one port serves everything.
  routerRoutes(front, {
    redis: store.write,
    cluster: config.cluster,
    auth,
    forcePolling: () => switches.forcePolling(),
    minPollIntervalMs: () => switches.get().pollIntervalMs,
  });
  const pushSubscriber = store.write.duplicate({ connectionName: 'standalone-pusher-sub' });
  const pusher = await startPusher({
    redis: store.write,
    subscriber: pushSubscriber,
    store,
    logger,
    ...pusherSettings(config),
  });
  await front.listen({ host: config.host, port: config.port });
  const address = front.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host}:${port}`;
  let connector: Connector | null = null;
  const connectorSubscriber = options.connector === false ? null : store.write.duplicate({ connectionName: 'standalone-connector-sub' });
  if (connectorSubscriber) {
    connector = await startConnector({
      config,
      logger,
      store,
      auth,
      ingest,
      server: front.server,
      publicUrl: config.connectorUrl ?? url,
      subscriber: connectorSubscriber,
      redis: store.write,
    });
  }
  return {
    url,
    connector,
    async stop() {
      await connector?.stop();
      await pusher.stop();
      connectorSubscriber?.disconnect();
      pushSubscriber.disconnect();
      await front.close();
      // Let the processor drain what the front accepted before the bus goes away.
      const deadline = Date.now() + 5000;
      while ((await processor.lag()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      while ((await archiver.lag()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await bus.close();
      await writePath.close();
      await closeStore();
    },
  };
}
