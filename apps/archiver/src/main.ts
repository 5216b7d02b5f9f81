import { Archive, archiveScope } from '@danmaku/archive';
import { openBus, type Bus, type Consumer } from '@danmaku/bus';
import { loadConfig } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { startArchiver } from './archiver.js';

const config = loadConfig();
const logger = createLogger('archiver', config.logLevel);
const archive = new Archive(config.mysqlUrl);
let bus: Bus | null = null;
let consumer: Consumer | null = null;
let stopping = false;

const http = createHttpServer({ logger, app: 'archiver' });
readinessRoute(http, { mysql: () => archive.ping(), bus: () => bus?.healthy() ?? false, consuming: () => consumer !== null });
const address = await http.listen({ host: config.host, port: config.archiverPort });

stopOnSignals(logger, async () => {
  stopping = true;
  await consumer?.stop();
  await bus?.close();
  await http.close();
  await archive.close();
});

// Migrate before consuming. MySQL may still be starting (or be away): wait for it rather than
// exit, since messages wait safely on the bus meanwhile.
for (let attempt = 1; !stopping; attempt++) {
  try {
    await archive.ready();
    break;
  } catch (err) {
    logger.warn({ err: (err as Error).message, attempt }, 'MySQL not ready for the archive; retrying');
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * attempt)));
  }
}
if (!stopping) {
  bus = await openBus(config, 'archiver', logger, true);
  consumer = await startArchiver({ bus, archive, topic: config.topic, logger, batchSize: config.archiverBatch, lingerMs: config.archiverLingerMs, progressScope: archiveScope(config) });
  logger.info({ address, brokers: config.kafkaBrokers, topic: config.topic }, 'archiver consuming');
}
