import { ApiError } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { liveQuerySchema, liveParams, liveView, MAX_OFFSET, parseTypes, typesField } from './helpers.js';

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;
/** A seek bar is a few hundred pixels wide: more spans than pixels say nothing more. */
const DEFAULT_DENSITY_BUCKETS = 100;
const MAX_DENSITY_BUCKETS = 2000;

interface ReplayQuerystring {
  from?: number;
  to?: number;
  types?: string;
  limit?: number;
}

/** Replay of a live's danmaku by offset window (API.md): local cache -> replay Redis -> MySQL. */
export async function replayRoutes(app: FastifyInstance, { replay }: FrontContext): Promise<void> {
  app.get<{ Params: { liveId: string } }>('/v1/lives/:liveId', { schema: { params: liveParams } }, async (request) => {
    const live = await replay.replay.live(request.params.liveId);
    return liveView(live);
  });

  app.get<{ Params: { liveId: string }; Querystring: ReplayQuerystring }>(
    '/v1/lives/:liveId/messages',
    {
      schema: liveQuerySchema({
        from: { type: 'integer', minimum: 0, maximum: MAX_OFFSET },
        to: { type: 'integer', minimum: 0, maximum: MAX_OFFSET },
        types: typesField,
        limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
      }),
    },
    async (request, reply) => {
      const { from = 0, to, limit = DEFAULT_LIMIT } = request.query;
      if (to !== undefined && to <= from) throw new ApiError(400, 'invalid_request', '"to" must be greater than "from" (ms since the live started; "to" is exclusive).');
      const page = await replay.replay.read(request.params.liveId, { from, to, limit, types: new Set(parseTypes(request.query.types)) });
      // Archived messages are JSON already: splice them in rather than parse and re-encode.
      return reply.type('application/json; charset=utf-8').send(`{"messages":[${page.messages.join(',')}],"next":${page.next === null ? 'null' : page.next}}`);
    },
  );

  app.get<{ Params: { liveId: string }; Querystring: { buckets?: number; types?: string } }>(
    '/v1/lives/:liveId/density',
    { schema: liveQuerySchema({ buckets: { type: 'integer', minimum: 1, maximum: MAX_DENSITY_BUCKETS }, types: typesField }) },
    async (request) => {
      const { buckets = DEFAULT_DENSITY_BUCKETS, types } = request.query;
      return replay.replay.density(request.params.liveId, buckets, new Set(parseTypes(types ?? 'comment')));
    },
  );
}
