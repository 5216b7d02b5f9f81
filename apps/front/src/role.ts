import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { routerRoutes } from '@danmaku/router';
import { buildFront } from './app.js';
import { FRONT_SETTINGS, type FrontSettings } from './settings.js';

/**
 * The HTTP API. It also answers `GET /v1/route`, so a client finds its long connection from the
 * address it already has, whether the roles run split or in one process. In one process the
 * other roles share its port (socket.io attaches to its server).
 */
export const frontRole: Role<FrontSettings, Shared> = defineRole('front', FRONT_SETTINGS, async ({ settings, logger, shared }) => {
  const [store, bus, sendPath, replay] = await Promise.all([shared.store(), shared.bus(), shared.send(), shared.replay()]);
  const { pipeline: send, switches, moderation } = sendPath;
  const app = buildFront({ config: settings, store, bus, auth: shared.auth, send, switches, replay, moderation }, logger);
  void app.register(routerRoutes, {
    redis: store.write,
    cluster: settings.cluster,
    auth: shared.auth,
    forcePolling: () => switches.forcePolling(),
    minPollIntervalMs: () => switches.get().pollIntervalMs,
  });
  await app.listen({ host: settings.host, port: settings.port });
  const address = app.server.address();
  const url = `http://${settings.host}:${typeof address === 'object' && address ? address.port : settings.port}`;
  if (shared.embedded) shared.front = { app, url };
  // Tests and scripts wait for this line.
  else process.stdout.write(`front listening on ${url}\n`);
  return {
    ready: Promise.resolve(),
    // A deploy: new sends get 503 draining (clients send again, elsewhere), the ones taken in are
    // acknowledged by the bus and answered; the stop then closes the server and the bus flushes.
    drain: () => send.drain(),
    stop: () => app.close(),
  };
});
