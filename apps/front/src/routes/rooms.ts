import { ApiError, roomParamsSchema, usersQuerySchema } from '@danmaku/model';
import { aliasOf } from '@danmaku/bilibili';
import { restricted, type FastifyInstance } from '@danmaku/http';
import { guard } from '@danmaku/store';
import type { FrontContext } from '../context.js';

type RoomRequest = { Params: { roomId: string } };

/** Presence (enter and leave with a token) and what anyone may read about a room. */
export async function roomRoutes(app: FastifyInstance, { store, hot, replay }: FrontContext): Promise<void> {
  const params = { params: roomParamsSchema };

  await app.register(
    restricted({ role: 'user' }, (viewer) => {
      viewer.post<RoomRequest>('/v1/rooms/:roomId/enter', { schema: params }, async (request) => {
        const principal = request.user;
        const { roomId } = request.params;
        if (await store.isBanned(roomId, principal.id)) throw new ApiError(403, 'banned', `You are banned from room ${roomId}.`);
        const online = await store.enter(roomId, principal);
        hot.cache.noteOnline(roomId, online);
        hot.enters.announce(roomId, principal, online);
        return { online };
      });

      viewer.post<RoomRequest>('/v1/rooms/:roomId/leave', { schema: params }, async (request) => {
        const online = await store.leave(request.params.roomId, request.user.id);
        hot.cache.noteOnline(request.params.roomId, online);
        return { online };
      });
    }),
  );

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
    const live = await replay.lives.cached(roomId);
    return { roomId, live, online, likes, alias };
  });
}
