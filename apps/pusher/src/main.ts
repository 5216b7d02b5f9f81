import { loadConfig } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openStore } from '@danmaku/store';
import { pusherSettings, startPusher } from './pusher.js';

const config = loadConfig();
const logger = createLogger('pusher', config.logLevel);
const { store, close: closeStore } = await openStore(config, 'pusher');
const pusher = await startPusher({
  redis: store.write,
  store,
  logger,
  ...pusherSettings(config),
});

const http = createHttpServer({ logger, app: 'pusher' });
readinessRoute(http, { redis: () => store.ping() });
const address = await http.listen({ host: config.host, port: config.pusherPort });
process.stdout.write(`pusher listening on ${address}\n`);
// Tests and the supervisor read which pusher this is (rooms are shared by id).
process.stdout.write(`pusher id ${pusher.id}\n`);

stopOnSignals(logger, async () => {
  await pusher.stop();
  await http.close();
  await closeStore();
});
