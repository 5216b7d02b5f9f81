import { createAuth } from '@danmaku/auth';
import { openBus } from '@danmaku/bus';
import { isDefaultSecret, loadConfig } from '@danmaku/config';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openStore } from '@danmaku/store';
import { openReplay } from '@danmaku/archive';
import { openSend } from '@danmaku/send';
import { buildFront } from './app.js';

const config = loadConfig();
const logger = createLogger('front', config.logLevel);
if (isDefaultSecret(config)) logger.warn('DANMAKU_JWT_SECRET is the development default; set your own');
const { store, close: closeStore } = await openStore(config, 'front');
const bus = await openBus(config, 'front', logger, true);
const sendPath = await openSend(config, { store, bus, logger, name: 'front' });
const { pipeline: send, switches, moderation } = sendPath;
const replay = openReplay(config, { redis: store.write, states: sendPath.lives, logger, name: 'front' });
const app = buildFront({ config, store, bus, auth: createAuth(config.jwtSecret), send, switches, replay, moderation }, logger);
const address = await app.listen({ host: config.host, port: config.port });
logger.info({ address }, 'front listening');

stopOnSignals(logger, async () => {
  await app.close();
  await bus.close();
  await replay.close();
  await sendPath.close();
  await closeStore();
});
