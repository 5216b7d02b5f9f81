import { Archive } from '@danmaku/archive';
import { openBus } from '@danmaku/bus';
import { loadConfig } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { startArchiver } from './archiver.js';

const config = loadConfig();
const logger = createLogger('archiver', config.logLevel);
const archive = new Archive(config.mysqlUrl);
// Migrate before consuming, so a broken schema stops the role loudly instead of retrying forever.
await archive.ready();
const bus = await openBus(config, 'archiver', logger, true);
const consumer = await startArchiver({ bus, archive, topic: config.topic, logger, batchSize: config.archiverBatch });

const http = createHttpServer({ logger, app: 'archiver' });
readinessRoute(http, { mysql: () => archive.ping(), bus: () => bus.healthy() });
const address = await http.listen({ host: config.host, port: config.archiverPort });
logger.info({ address, brokers: config.kafkaBrokers, topic: config.topic }, 'archiver consuming');

stopOnSignals(logger, async () => {
  await consumer.stop();
  await bus.close();
  await http.close();
  await archive.close();
});
