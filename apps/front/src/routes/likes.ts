import { ApiError, roomParamsSchema } from '@danmaku/model';
import { LIMITS } from '@danmaku/protocol';
import { restricted, type FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';

const likeBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { count: { type: 'integer', minimum: 1, maximum: LIMITS.likesMaxCount } },
} as const;

/** `POST /v1/rooms/:roomId/likes` (a token needed): counted in this front, flushed to Redis about once a second. */
export async function likeRoutes(app: FastifyInstance, { hot, switches }: FrontContext): Promise<void> {
  await app.register(
    restricted({ role: 'user' }, (viewer) => {
      viewer.post<{ Params: { roomId: string }; Body: { count?: number } }>(
        '/v1/rooms/:roomId/likes',
        {
          schema: { params: roomParamsSchema, body: likeBodySchema },
          // A tap may come with no body at all: that is one like.
          preValidation: async (request) => {
            if (request.body === undefined || request.body === null) request.body = {};
          },
        },
        async (request, reply) => {
          if (!switches.get().likes) {
            throw new ApiError(503, 'likes_disabled', 'Likes are switched off for now to keep the live running smoothly; try again later.', 30);
          }
          hot.likes.add(request.params.roomId, request.body?.count ?? 1);
          return reply.code(202).send({ ok: true });
        },
      );
    }),
  );
}
