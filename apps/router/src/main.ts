import { createAuth } from '@danmaku/auth';
import { loadConfig, refuseUnsafeStart } from '@danmaku/config';
import { createHttpServer, readinessRoute } from '@danmaku/http';
import { createLogger, stopOnSignals } from '@danmaku/observability';
import { createRedis, waitReady } from '@danmaku/store';
import { Switchboard } from '@danmaku/switches';
import { routerRoutes } from './router.js';

const config = loadConfig();
const logger = createLogger('router', config.logLevel);
refuseUnsafeStart(config, (text) => logger.warn(text));
const redis = createRedis(config.redisUrl, { name: 'router', commandTimeoutMs: config.redisTimeoutMs });
await waitReady(redis);
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
  await redis.quit().catch(() => undefined);
});
