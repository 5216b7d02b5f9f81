import { openBus } from '@danmaku/bus';
import { loadConfig } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openStore } from '@danmaku/store';
import { processorSettings, redisAnnouncer, startProcessor } from './processor.js';

const config = loadConfig();
const logger = createLogger('processor', config.logLevel);
const { store, close: closeStore } = await openStore(config, 'processor');
const bus = await openBus(config, 'processor', logger, true);
const consumer = await startProcessor({ bus, store, logger, announce: redisAnnouncer(store.signals), ...processorSettings(config) });

const http = createHttpServer({ logger, app: 'processor' });
readinessRoute(http, { redis: () => store.ping(), bus: () => bus.healthy() });
const address = await http.listen({ host: config.host, port: config.processorPort });
logger.info({ address, brokers: config.kafkaBrokers, topic: config.topic }, 'processor consuming');

stopOnSignals(logger, async () => {
  await consumer.stop();
  await bus.close();
  await http.close();
  await closeStore();
});
