import { ApiError } from '@danmaku/model';
import type { FastifyInstance, FastifyRequest } from '@danmaku/http';
import { switchesPatchSchema, type SwitchesPatch } from '@danmaku/switches';
import { requireUser, type FrontDeps } from '../context.js';
import type { FrontHot } from '../cache/hot.js';

function requireAdmin(deps: FrontDeps, request: FastifyRequest): void {
  if (requireUser(deps, request).role !== 'admin') throw new ApiError(403, 'forbidden', 'Only an admin may read or change the degrade switches.');
}

/**
 * Degrade switches at run time (`GET`/`PUT /v1/admin/switches`, admin token). A change is in
 * Redis at once and every front, processor and router picks it up within a refresh (~1 s).
 */
export function switchRoutes(app: FastifyInstance, deps: FrontDeps, hot: FrontHot): void {
  app.get('/v1/admin/switches', async (request) => {
    requireAdmin(deps, request);
    await hot.switches.refresh().catch(() => undefined);
    return { switches: hot.switches.get(), gears: hot.switches.hotStreams() };
  });

  app.put<{ Body: SwitchesPatch }>('/v1/admin/switches', { schema: { body: switchesPatchSchema } }, async (request) => {
    requireAdmin(deps, request);
    const switches = await hot.switches.set(request.body);
    request.log.warn({ change: request.body }, 'degrade switches changed');
    return { switches, gears: hot.switches.hotStreams() };
  });
}
