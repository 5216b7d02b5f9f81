import { ROOM_ID_PATTERN, roomParamsSchema } from '@danmaku/model';
import { restricted, type FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';

export const LIVE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** A streamer starts and ends the lives of a room (API.md); anyone lists them (replay players). */
export async function liveRoutes(app: FastifyInstance, { replay }: FrontContext): Promise<void> {
  app.get<{ Params: { roomId: string }; Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/lives',
    {
      schema: {
        params: roomParamsSchema,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } } },
      },
    },
    async (request) => {
      const lives = await replay.archive.livesOf(request.params.roomId, request.query.limit ?? 20);
      return { lives: lives.map((l) => ({ ...l, durationMs: l.endedAt === null ? null : l.endedAt - l.startedAt })) };
    },
  );

  await app.register(
    restricted({ role: 'moderator' }, (streamer) => {
      streamer.post<{ Params: { roomId: string } }>('/v1/rooms/:roomId/lives', { schema: { params: roomParamsSchema } }, async (request, reply) =>
        reply.code(201).send(await replay.lives.start(request.params.roomId, request.user)),
      );

      streamer.post<{ Params: { roomId: string; liveId: string } }>(
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
        async (request) => replay.lives.end(request.params.roomId, request.params.liveId),
      );
    }),
  );
}
