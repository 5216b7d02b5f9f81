import { createHttpServer, readinessRoute, type FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';
import type { FrontDeps } from './context.js';
import { messageRoutes } from './routes/messages.js';
import { roomRoutes } from './routes/rooms.js';
import { liveRoutes } from './routes/lives.js';
import { replayRoutes } from './routes/replay.js';
import { moderationRoutes } from './routes/moderation.js';
import { createHot } from './cache/hot.js';
import { likeRoutes } from './routes/likes.js';
import { switchRoutes } from './routes/switches.js';
import { clientMetricsRoutes } from './routes/client-metrics.js';
import { pageRoutes } from './routes/pages.js';

/** The front's HTTP API (API.md) on a server of its own, ready to listen. */
export function buildFront(deps: FrontDeps, logger: Logger): FastifyInstance {
  const app = createHttpServer({ logger, app: 'front', trustProxy: deps.config.trustProxy });
  // Hot rooms: local cache, likes, enter messages, switches; timers that must stop with the app.
  const hot = createHot(deps, logger);
  deps = { ...deps, switches: hot.switches };
  app.addHook('onClose', () => hot.stop());
  readinessRoute(app, { redis: () => deps.store.ping(), bus: () => deps.bus.healthy() });
  messageRoutes(app, deps, hot);
  roomRoutes(app, deps, hot);
  liveRoutes(app, deps);
  replayRoutes(app, deps);
  moderationRoutes(app, deps);
  likeRoutes(app, deps, hot);
  switchRoutes(app, deps, hot);
  clientMetricsRoutes(app);
  pageRoutes(app, deps);
  return app;
}
