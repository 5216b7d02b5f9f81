import { ApiError, roomParamsSchema } from '@danmaku/model';
import { MESSAGE_TYPES, LIMITS, NO_CONTROL_CHARS, ROOM_ID_PATTERN, type MessageType } from '@danmaku/protocol';
import { restricted, type FastifyInstance, type FastifyRequest } from '@danmaku/http';
import { guard, keys } from '@danmaku/store';
import { GEARS_KEY } from '@danmaku/switches';
import { likesKey } from '../likes.js';
import type { FrontContext } from '../context.js';

const USER_ID = { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROL_CHARS } as const;
const MAX_DURATION_SEC = 30 * 24 * 3600;
const STATS_SAMPLE = 200;
const STATS_WINDOW_MS = 10_000;

const userParams = {
  type: 'object',
  required: ['roomId', 'userId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, userId: USER_ID },
} as const;

type Room = { Params: { roomId: string } };
type RoomUser = { Params: { roomId: string; userId: string } };

/** Streamer and moderator tools: mutes, bans, deletes, slow mode, pinned notice, stats. Anyone reads the notice. */
export async function moderationRoutes(app: FastifyInstance, ctx: FrontContext): Promise<void> {
  const { store, moderation, replay, send } = ctx;

  app.get<Room>('/v1/rooms/:roomId/notice', { schema: { params: roomParamsSchema } }, async (request) => ({
    notice: await moderation.pinned(request.params.roomId),
  }));

  await app.register(
    restricted({ role: 'moderator' }, (room) => {
      room.post<Room & { Body: { userId: string; durationSec: number } }>(
        '/v1/rooms/:roomId/mutes',
        {
          schema: {
            params: roomParamsSchema,
            body: {
              type: 'object',
              required: ['userId', 'durationSec'],
              additionalProperties: false,
              properties: { userId: USER_ID, durationSec: { type: 'integer', minimum: 1, maximum: MAX_DURATION_SEC } },
            },
          },
        },
        async (request) => {
          const { roomId } = request.params;
          const until = await moderation.mute(roomId, request.body.userId, request.body.durationSec);
          return { userId: request.body.userId, mutedUntil: until };
        },
      );

      room.delete<RoomUser>('/v1/rooms/:roomId/mutes/:userId', { schema: { params: userParams } }, async (request) => {
        const { roomId, userId } = request.params;
        await moderation.unmute(roomId, userId);
        return { userId, muted: false };
      });

      room.post<Room & { Body: { userId: string; durationSec?: number } }>(
        '/v1/rooms/:roomId/bans',
        {
          schema: {
            params: roomParamsSchema,
            body: {
              type: 'object',
              required: ['userId'],
              additionalProperties: false,
              properties: { userId: USER_ID, durationSec: { type: 'integer', minimum: 1, maximum: MAX_DURATION_SEC } },
            },
          },
        },
        async (request) => {
          const { roomId } = request.params;
          const principal = request.user;
          if (request.body.userId === principal.id) throw new ApiError(400, 'invalid_request', 'You cannot ban yourself.');
          const until = await moderation.ban(roomId, request.body.userId, request.body.durationSec);
          // Out of the viewer list at once; connectors refuse the next join (they check bans).
          await store.leave(roomId, request.body.userId);
          return { userId: request.body.userId, bannedUntil: until };
        },
      );

      room.post<Room & { Body: { userId: string } }>(
        '/v1/rooms/:roomId/kicks',
        {
          schema: {
            params: roomParamsSchema,
            body: { type: 'object', required: ['userId'], additionalProperties: false, properties: { userId: USER_ID } },
          },
        },
        async (request) => {
          const { roomId } = request.params;
          if (request.body.userId === request.user.id) throw new ApiError(400, 'invalid_request', 'You cannot kick yourself.');
          await moderation.kick(roomId, request.body.userId);
          await store.leave(roomId, request.body.userId);
          return { userId: request.body.userId, kicked: true };
        },
      );

      room.delete<RoomUser>('/v1/rooms/:roomId/bans/:userId', { schema: { params: userParams } }, async (request) => {
        const { roomId, userId } = request.params;
        await moderation.unban(roomId, userId);
        return { userId, banned: false };
      });

      room.delete<{ Params: { roomId: string; messageId: string }; Querystring: { type?: MessageType } }>(
        '/v1/rooms/:roomId/messages/:messageId',
        {
          schema: {
            params: {
              type: 'object',
              required: ['roomId', 'messageId'],
              properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, messageId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
            },
            querystring: { type: 'object', additionalProperties: false, properties: { type: { type: 'string', enum: MESSAGE_TYPES } } },
          },
        },
        async (request) => {
          const { roomId, messageId } = request.params;
          const principal = request.user;
          // The tombstone first: it is what keeps the message out of replay for good, and a retry
          // after a failure here finds nothing half done.
          const archived = await replay.archive.tombstone(roomId, messageId, principal.id);
          const types = request.query.type ? [request.query.type] : MESSAGE_TYPES;
          const removeFromLive = async (): Promise<boolean> => (await Promise.all(types.map((type) => store.deleteMessage(roomId, type, messageId)))).some(Boolean);
          const removedFromLive = await removeFromLive();
          // Not in the live window: it may still be on the bus (accepted, not yet stored). Try again
          // as it lands; the replay side needs nothing more, the tombstone already covers it.
          if (!removedFromLive) retryLater(removeFromLive, request.log);
          const lives = new Set<string>();
          if (archived.liveId) lives.add(archived.liveId);
          const current = await replay.lives.current(roomId).catch(() => null);
          if (current) lives.add(current.liveId);
          await Promise.all([...lives].map((liveId) => replay.replay.invalidate(liveId)));
          return { id: messageId, removedFromLive, archived: true };
        },
      );

      room.put<Room & { Body: { seconds: number } }>(
        '/v1/rooms/:roomId/slow-mode',
        {
          schema: {
            params: roomParamsSchema,
            body: { type: 'object', required: ['seconds'], additionalProperties: false, properties: { seconds: { type: 'integer', minimum: 0, maximum: 3600 } } },
          },
        },
        async (request) => {
          const { roomId } = request.params;
          await moderation.setSlowMode(roomId, request.body.seconds);
          return { slowModeSec: request.body.seconds };
        },
      );

      room.post<Room & { Body: { content: string } }>(
        '/v1/rooms/:roomId/notice',
        {
          schema: {
            params: roomParamsSchema,
            body: {
              type: 'object',
              required: ['content'],
              additionalProperties: false,
              properties: { content: { type: 'string', minLength: 1, maxLength: LIMITS.commentMaxChars, pattern: NO_CONTROL_CHARS } },
            },
          },
        },
        async (request, reply) => {
          const { roomId } = request.params;
          // A system message in the room, through the pipeline's checks for such messages (text rules, live stamp).
          const message = await send.system(roomId, request.body.content, request.user);
          const notice = { content: message.content ?? '', by: message.user, ts: message.ts, messageId: message.id };
          await moderation.pin(roomId, notice);
          return reply.code(201).send({ id: message.id, ts: message.ts, notice });
        },
      );

      room.delete<Room>('/v1/rooms/:roomId/notice', { schema: { params: roomParamsSchema } }, async (request) => {
        const { roomId } = request.params;
        await moderation.unpin(roomId);
        return { notice: null };
      });

      room.get<Room>('/v1/rooms/:roomId/stats', { schema: { params: roomParamsSchema } }, async (request) => {
        const { roomId } = request.params;
        const now = Date.now();
        const read = store.read;
        const [online, likes, gears, seqs, recent, roomModeration, live] = await Promise.all([
          store.online(roomId, now),
          guard(() => read.get(likesKey(roomId))),
          guard(() => read.hmget(GEARS_KEY, ...MESSAGE_TYPES.map((t) => `${roomId}:${t}`))),
          store.newestSeqs(roomId, MESSAGE_TYPES),
          Promise.all(MESSAGE_TYPES.map((t) => guard(() => read.zrange(keys.messages(roomId, t), -STATS_SAMPLE, -1)))),
          moderation.room(roomId, now),
          replay.lives.current(roomId),
        ]);
        const perType: Record<string, { total: number; perSecond: number; gear: number }> = {};
        let perSecond = 0;
        MESSAGE_TYPES.forEach((type, i) => {
          const rate = ratePerSecond(recent[i] ?? [], now);
          perSecond += rate;
          perType[type] = { total: Number(seqs[i] ?? 0), perSecond: rate, gear: Number(gears[i] ?? 1) };
        });
        return {
          roomId,
          live,
          online,
          likes: Number(likes ?? 0),
          messagesPerSecond: Math.round(perSecond * 10) / 10,
          types: perType,
          gear: Math.max(...Object.values(perType).map((t) => t.gear)),
          ...roomModeration,
        };
      });
    }),
  );
}

/** Delays after a delete that found nothing in the live window (the bus's usual lag is far below). */
const DELETE_RETRY_MS = [250, 1000, 3000, 10_000];

function retryLater(attempt: () => Promise<boolean>, log: FastifyRequest['log'], step = 0): void {
  const delay = DELETE_RETRY_MS[step];
  if (delay === undefined) return;
  setTimeout(() => {
    attempt().then(
      (done) => {
        if (!done) retryLater(attempt, log, step + 1);
      },
      (err: unknown) => {
        log.warn({ err }, 'delayed delete failed; retrying');
        retryLater(attempt, log, step + 1);
      },
    );
  }, delay).unref();
}

/**
 * Messages per second over the last 10 s, from the newest stored messages of a stream (their
 * `ts`). When the whole sample is that recent the rate is sample / its span.
 */
function ratePerSecond(stored: readonly string[], now: number): number {
  let inWindow = 0;
  let oldest = now;
  for (const json of stored) {
    const ts = Number(/"ts":(\d+)/.exec(json)?.[1] ?? 0);
    if (ts >= now - STATS_WINDOW_MS) {
      inWindow++;
      oldest = Math.min(oldest, ts);
    }
  }
  if (inWindow === 0) return 0;
  const span = inWindow >= STATS_SAMPLE ? Math.max(1000, now - oldest) : STATS_WINDOW_MS;
  return Math.round((inWindow / (span / 1000)) * 10) / 10;
}
