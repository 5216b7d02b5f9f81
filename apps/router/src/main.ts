import { createAuth } from '@danmaku/auth';
import { loadConfig } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { openClients } from '@danmaku/store';
import { Switchboard } from '@danmaku/switches';
import { routerRoutes } from './router.js';

const config = loadConfig();
const logger = createLogger('router', config.logLevel);
// REDIS_URL or, with REDIS_CLUSTER_NODES, the cluster.
const { write: redis, close: closeRedis } = await openClients(config, 'router');
const switches = await new Switchboard({ redis, refreshMs: config.switchesRefreshMs }).start();

const app = createHttpServer({ logger, app: 'router' });
readinessRoute(app, { redis: async () => (await redis.ping()) === 'PONG' });
routerRoutes(app, {
  redis,
  cluster: config.cluster,
  auth: createAuth(config.jwtSecret),
  forcePolling: () => switches.forcePolling(),
  minPollIntervalMs: () => switches.get().pollIntervalMs,
});
const address = await app.listen({ host: config.host, port: config.routerPort });
process.stdout.write(`router listening on ${address}\n`);

stopOnSignals(logger, async () => {
  switches.stop();
  await app.close();
  await closeRedis();
});
