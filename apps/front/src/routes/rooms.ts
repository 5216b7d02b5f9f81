import { roomParamsSchema, usersQuerySchema } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import { requireUser, type FrontDeps } from '../context.js';

type RoomRequest = { Params: { roomId: string } };

export function roomRoutes(app: FastifyInstance, deps: FrontDeps): void {
  const { store } = deps;
  const params = { params: roomParamsSchema };

  app.post<RoomRequest>('/v1/rooms/:roomId/enter', { schema: params }, async (request) => {
    const principal = requireUser(deps, request);
    return { online: await store.enter(request.params.roomId, principal) };
  });

  app.post<RoomRequest>('/v1/rooms/:roomId/leave', { schema: params }, async (request) => {
    const principal = requireUser(deps, request);
    return { online: await store.leave(request.params.roomId, principal.id) };
  });

  app.get<RoomRequest & { Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/users',
    { schema: { ...params, querystring: usersQuerySchema } },
    async (request) => store.users(request.params.roomId, request.query.limit ?? 50),
  );

  app.get<RoomRequest>('/v1/rooms/:roomId', { schema: params }, async (request) => {
    const { roomId } = request.params;
    const online = await store.online(roomId);
    return { roomId, live: null, online, likes: 0 };
  });
}
