import { restricted, type FastifyInstance } from '@danmaku/http';
import { switchesPatchSchema, type SwitchesPatch } from '@danmaku/switches';
import type { FrontContext } from '../context.js';

/**
 * Degrade switches at run time (`GET`/`PUT /v1/admin/switches`, admin token). A change is in
 * Redis at once and every front, processor and router picks it up within a refresh (~1 s).
 */
export async function switchRoutes(app: FastifyInstance, { switches }: FrontContext): Promise<void> {
  await app.register(
    restricted({ role: 'admin', denied: 'Only an admin may read or change the degrade switches.' }, (admin) => {
      admin.get('/v1/admin/switches', async () => {
        await switches.refresh().catch(() => undefined);
        return { switches: switches.get(), gears: switches.hotStreams() };
      });

      admin.put<{ Body: SwitchesPatch }>('/v1/admin/switches', { schema: { body: switchesPatchSchema } }, async (request) => {
        const changed = await switches.set(request.body);
        request.log.warn({ change: request.body }, 'degrade switches changed');
        return { switches: changed, gears: switches.hotStreams() };
      });
    }),
  );
}
