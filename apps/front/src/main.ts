import { createAuth } from '@danmaku/auth';
import { openBus } from '@danmaku/bus';
import { loadConfig, refuseUnsafeStart } from '@danmaku/config';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openStore } from '@danmaku/store';
import { openWritePath } from '@danmaku/write-path';
import { buildFront } from './app.js';

const config = loadConfig();
const logger = createLogger('front', config.logLevel);
refuseUnsafeStart(config, (text) => logger.warn(text));
const { store, close: closeStore } = await openStore(config, 'front');
const bus = await openBus(config, 'front', logger, true);
const writePath = await openWritePath(config, { store, bus, logger, name: 'front' });
const { ingest, switches, replay, moderation } = writePath;
const app = buildFront({ config, store, bus, auth: createAuth(config.jwtSecret), ingest, switches, replay, moderation }, logger);
const address = await app.listen({ host: config.host, port: config.port });
logger.info({ address }, 'front listening');

stopOnSignals(logger, async () => {
  await app.close();
  await bus.close();
  await writePath.close();
  await closeStore();
});
