import { authPlugin, createHttpServer, readinessRoute, type FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';
import type { FrontContext, FrontDeps } from './context.js';
import { messageRoutes } from './routes/messages.js';
import { roomRoutes } from './routes/rooms.js';
import { liveRoutes } from './routes/lives.js';
import { replayRoutes } from './routes/replay.js';
import { moderationRoutes } from './routes/moderation.js';
import { createHot } from './cache/hot.js';
import { likeRoutes } from './routes/likes.js';
import { switchRoutes } from './routes/switches.js';
import { clientMetricsRoutes } from './routes/client-metrics.js';
import { aliasRoutes } from './routes/alias.js';
import { devTokenRoutes } from './routes/dev-token.js';
import { pagesPlugin } from '@danmaku/pages';
import { playerRoutes } from './routes/players.js';
import { importRoutes } from './routes/imports.js';
import { registerDocs } from './docs.js';

/**
 * The front's HTTP API (API.md) on a server of its own, ready to listen. Each route file is a
 * plugin; the ones with streamer or admin routes keep them in a child context whose hook checks
 * the caller (`restricted` in @danmaku/http).
 */
export function buildFront(deps: FrontDeps, logger: Logger): FastifyInstance {
  const app = createHttpServer({ logger, app: 'front', trustProxy: deps.config.trustProxy, corsOrigins: deps.config.corsOrigins, beforeRoutes: registerDocs });
  // Hot rooms: local cache, likes, enter messages; stopped with the app.
  const hot = createHot(deps, logger);
  app.addHook('onClose', () => hot.stop());
  const ctx: FrontContext = { ...deps, hot };
  readinessRoute(app, { redis: () => deps.store.ping(), bus: () => deps.bus.healthy() });
  void app.register(authPlugin, { auth: deps.auth });
  void app.register(messageRoutes, ctx);
  void app.register(roomRoutes, ctx);
  void app.register(liveRoutes, ctx);
  void app.register(replayRoutes, ctx);
  void app.register(moderationRoutes, ctx);
  void app.register(likeRoutes, ctx);
  void app.register(switchRoutes, ctx);
  void app.register(clientMetricsRoutes);
  void app.register(aliasRoutes, ctx);
  // In a plugin like every route, so the API document (registered first) sees it.
  void app.register((instance, _opts, done) => {
    devTokenRoutes(instance, deps);
    done();
  });
  void app.register(pagesPlugin, { frameAncestors: deps.config.frameAncestors });
  void app.register(playerRoutes, ctx);
  void app.register(importRoutes, ctx);
  return app;
}
