import { ApiError, LIMITS, roomParamsSchema } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import { requireUser, type FrontDeps } from '../context.js';
import type { FrontHot } from '../cache/hot.js';

const likeBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { count: { type: 'integer', minimum: 1, maximum: LIMITS.likesMaxCount } },
} as const;

/** `POST /v1/rooms/:roomId/likes`: counted in this front, flushed to Redis about once a second. */
export function likeRoutes(app: FastifyInstance, deps: FrontDeps, hot: FrontHot): void {
  app.post<{ Params: { roomId: string }; Body: { count?: number } }>(
    '/v1/rooms/:roomId/likes',
    {
      schema: { params: roomParamsSchema, body: likeBodySchema },
      // A tap may come with no body at all: that is one like.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request, reply) => {
      requireUser(deps, request);
      if (!hot.switches.get().likes) {
        throw new ApiError(503, 'likes_disabled', 'Likes are switched off for now to keep the live running smoothly; try again later.', 30);
      }
      hot.likes.add(request.params.roomId, request.body?.count ?? 1);
      return reply.code(202).send({ ok: true });
    },
  );
}
