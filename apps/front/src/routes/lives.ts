import type { ReplayStack } from '@danmaku/archive';
import { ApiError, ROOM_ID_PATTERN, roomParamsSchema } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontDeps } from '../context.js';
import { requireModerator } from './moderation.js';

export const LIVE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

export function replayOf(deps: FrontDeps): ReplayStack {
  if (!deps.replay) throw new ApiError(503, 'archive_unavailable', 'Lives and replay are not configured on this server.', 5);
  return deps.replay;
}

/** A streamer starts and ends the lives of a room (API.md); anyone lists them (replay players). */
export function liveRoutes(app: FastifyInstance, deps: FrontDeps): void {
  app.post<{ Params: { roomId: string } }>('/v1/rooms/:roomId/lives', { schema: { params: roomParamsSchema } }, async (request, reply) => {
    const { roomId } = request.params;
    const principal = requireModerator(deps, request, roomId);
    const live = await replayOf(deps).lives.start(roomId, principal);
    return reply.code(201).send(live);
  });

  app.get<{ Params: { roomId: string }; Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/lives',
    {
      schema: {
        params: roomParamsSchema,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } } },
      },
    },
    async (request) => {
      const lives = await replayOf(deps).archive.livesOf(request.params.roomId, request.query.limit ?? 20);
      return { lives: lives.map((l) => ({ ...l, durationMs: l.endedAt === null ? null : l.endedAt - l.startedAt })) };
    },
  );

  app.post<{ Params: { roomId: string; liveId: string } }>(
    '/v1/rooms/:roomId/lives/:liveId/end',
    {
      schema: {
        params: {
          type: 'object',
          required: ['roomId', 'liveId'],
          properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
        },
      },
    },
    async (request) => {
      const { roomId, liveId } = request.params;
      requireModerator(deps, request, roomId);
      return replayOf(deps).lives.end(roomId, liveId);
    },
  );
}
