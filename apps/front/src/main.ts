import { createAuth } from '@danmaku/auth';
import { openBus } from '@danmaku/bus';
import { isDefaultSecret, loadConfig } from '@danmaku/config';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openStore } from '@danmaku/store';
import { createIngest } from '@danmaku/ingest';
import { gearPartitioner, readOnlyCheck, Switchboard } from '@danmaku/switches';
import { openReplay } from '@danmaku/archive';
import { createModeration } from '@danmaku/moderation';
import { buildFront } from './app.js';

const config = loadConfig();
const logger = createLogger('front', config.logLevel);
if (isDefaultSecret(config)) logger.warn('DANMAKU_JWT_SECRET is the development default; set your own');
const { store, close: closeStore } = await openStore(config, 'front');
const bus = await openBus(config, 'front', logger, true);
// Switches and gears (issue 3): the ingest spreads hot streams and refuses read-only rooms.
const switches = await new Switchboard({ redis: store.write, refreshMs: config.switchesRefreshMs }).start();
// Lives, replay and moderation (issue 5); checks in order, cheap first, the live stamp last.
const replay = openReplay(config, store.write, logger, 'front');
const moderation = createModeration({ ...config, store, logger });
const checks = [readOnlyCheck(switches), ...moderation.checks, replay.lives.stampCheck];
const ingest = createIngest({ bus, topic: config.topic, checks, partition: gearPartitioner(switches, bus.partitions, config.gearSpread) });
const app = buildFront({ config, store, bus, auth: createAuth(config.jwtSecret), ingest, switches, replay, moderation }, logger);
const address = await app.listen({ host: config.host, port: config.port });
logger.info({ address }, 'front listening');

stopOnSignals(logger, async () => {
  await app.close();
  switches.stop();
  moderation.stop();
  await bus.close();
  await replay.close();
  await closeStore();
});
