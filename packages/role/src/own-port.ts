import { createHttpServer, readinessRoute, type FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';

export interface OwnPort {
  app: FastifyInstance;
  /** http://host:port it listens on (the real port when 0 was asked). */
  url: string;
  close(): Promise<void>;
}

/**
 * The HTTP server of a role that runs alone: /metrics, /healthz, /readyz with the role's checks,
 * plus whatever `routes` adds. Roles in standalone have none: the front's port answers for the process.
 */
export async function listenOwnPort(options: {
  name: string;
  logger: Logger;
  host: string;
  port: number;
  /** DANMAKU_CORS_ORIGINS, for a role whose port serves an API to browsers. */
  corsOrigins?: readonly string[];
  checks: Record<string, () => Promise<boolean> | boolean>;
  routes?: (app: FastifyInstance) => void;
}): Promise<OwnPort> {
  const app = createHttpServer({ logger: options.logger, app: options.name, corsOrigins: options.corsOrigins });
  readinessRoute(app, options.checks);
  options.routes?.(app);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { app, url: `http://${options.host}:${port}`, close: () => app.close() };
}
