import { ApiError, roomParamsSchema, usersQuerySchema } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import { aliasOf } from '@danmaku/bilibili';
import { guard } from '@danmaku/store';
import { requireUser, type FrontDeps } from '../context.js';
import type { FrontHot } from '../cache/hot.js';

type RoomRequest = { Params: { roomId: string } };

export function roomRoutes(app: FastifyInstance, deps: FrontDeps, hot: FrontHot): void {
  const { store } = deps;
  const params = { params: roomParamsSchema };

  app.post<RoomRequest>('/v1/rooms/:roomId/enter', { schema: params }, async (request) => {
    const principal = requireUser(deps, request);
    const { roomId } = request.params;
    if (await store.isBanned(roomId, principal.id)) throw new ApiError(403, 'banned', `You are banned from room ${roomId}.`);
    const online = await store.enter(roomId, principal);
    hot.cache.noteOnline(roomId, online);
    hot.enters.announce(roomId, principal, online);
    return { online };
  });

  app.post<RoomRequest>('/v1/rooms/:roomId/leave', { schema: params }, async (request) => {
    const principal = requireUser(deps, request);
    const online = await store.leave(request.params.roomId, principal.id);
    hot.cache.noteOnline(request.params.roomId, online);
    return { online };
  });

  app.get<RoomRequest & { Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/users',
    { schema: { ...params, querystring: usersQuerySchema } },
    async (request) => store.users(request.params.roomId, request.query.limit ?? 50),
  );

  app.get<RoomRequest>('/v1/rooms/:roomId', { schema: params }, async (request) => {
    const { roomId } = request.params;
    const [online, likes, alias] = await Promise.all([store.online(roomId), guard(() => hot.likes.total(roomId)), guard(() => aliasOf(store.read, roomId))]);
    hot.cache.noteOnline(roomId, online);
    // The live state is cached per process for a second (and dropped on start/end events).
    const live = deps.replay ? await deps.replay.lives.cached(roomId) : null;
    return { roomId, live, online, likes, alias };
  });
}
