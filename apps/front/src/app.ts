import { createHttpServer, readinessRoute, type FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';
import type { FrontDeps } from './context.js';
import { messageRoutes } from './routes/messages.js';
import { roomRoutes } from './routes/rooms.js';

/** The front's HTTP API (API.md) on a server of its own, ready to listen. */
export function buildFront(deps: FrontDeps, logger: Logger): FastifyInstance {
  const app = createHttpServer({ logger, app: 'front' });
  readinessRoute(app, { redis: () => deps.store.ping(), bus: () => deps.bus.healthy() });
  messageRoutes(app, deps);
  roomRoutes(app, deps);
  return app;
}
