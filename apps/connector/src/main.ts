import { createAuth } from '@danmaku/auth';
import { openBus, type Bus } from '@danmaku/bus';
import { loadConfig, refuseUnsafeStart } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { openWritePath, type WritePath } from '@danmaku/write-path';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { createRedis, openStore, waitReady } from '@danmaku/store';
import { startConnector } from './connector.js';

const config = loadConfig();
const logger = createLogger('connector', config.logLevel);
refuseUnsafeStart(config, (text) => logger.warn(text));
const { store, close: closeStore } = await openStore(config, 'connector');
// Sends over the socket take the same path as HTTP sends, so they need the real (Kafka) bus;
// without one this node only delivers, and `send` answers 503.
// The write path is the front's, checks included (moderation, rate limits, read-only, live stamp).
let bus: Bus | null = null;
let writePath: WritePath | null = null;
if (config.kafkaBrokers.length > 0) {
  bus = await openBus(config, 'connector', logger, true);
  writePath = await openWritePath(config, { store, bus, logger, name: 'connector' });
} else {
  logger.warn('no KAFKA_BROKERS: socket sends are refused (clients send over HTTP)');
}
const subscriber = createRedis(config.redisUrl, { name: 'connector-sub' });
await waitReady(subscriber);

const http = createHttpServer({ logger, app: 'connector' });
readinessRoute(http, { redis: () => store.ping(), ...(bus ? { bus: () => (bus as Bus).healthy() } : {}) });
await http.listen({ host: config.host, port: config.connectorPort });
const address = http.server.address();
const port = typeof address === 'object' && address ? address.port : config.connectorPort;
const publicUrl = config.connectorUrl ?? `http://${config.host}:${port}`;

const connector = await startConnector({
  config,
  logger,
  store,
  auth: createAuth(config.jwtSecret),
  ingest: writePath?.ingest ?? null,
  server: http.server,
  publicUrl,
  subscriber,
  redis: store.write,
});
// Tests and scripts wait for this line.
process.stdout.write(`connector ${connector.nodeId} listening on ${publicUrl}\n`);

stopOnSignals(logger, async () => {
  await connector.stop();
  await http.close();
  subscriber.disconnect();
  await bus?.close();
  await writePath?.close();
  await closeStore();
});
