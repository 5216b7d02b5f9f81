import { listenOwnPort } from '@danmaku/http';
import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { Switchboard } from '@danmaku/switches';
import { routerRoutes } from './router.js';
import { ROUTER_SETTINGS, type RouterSettings } from './settings.js';

/**
 * The routing service on a port of its own, for deployments that keep it apart. Every front
 * serves the same routes on its own port as well (see the front role), so clients can ask either.
 */
export const routerRole: Role<RouterSettings, Shared> = defineRole('router', ROUTER_SETTINGS, async ({ settings, logger, shared }) => {
  const store = await shared.store();
  const redis = store.write;
  const switches = await new Switchboard({ redis, refreshMs: settings.switchesRefreshMs }).start();
  const own = await listenOwnPort({
    name: 'router',
    logger,
    host: settings.host,
    port: settings.routerPort,
    corsOrigins: settings.corsOrigins,
    checks: { redis: async () => (await redis.ping()) === 'PONG' },
    routes: (app) =>
      void app.register(routerRoutes, {
        redis,
        cluster: settings.cluster,
        auth: shared.auth,
        forcePolling: () => switches.forcePolling(),
        minPollIntervalMs: () => switches.get().pollIntervalMs,
      }),
  });
  // Tests and scripts wait for this line.
  process.stdout.write(`router listening on ${own.url}\n`);
  return {
    ready: Promise.resolve(),
    async stop() {
      switches.stop();
      await own.close();
    },
  };
});
