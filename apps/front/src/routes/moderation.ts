import { canModerate, type Principal } from '@danmaku/auth';
import { MESSAGE_TYPES, ApiError, LIMITS, NO_CONTROL_CHARS, ROOM_ID_PATTERN, newMessageId, roomParamsSchema, type MessageType, type UnsequencedMessage } from '@danmaku/model';
import type { FastifyInstance, FastifyRequest } from '@danmaku/http';
import type { Moderation } from '@danmaku/moderation';
import { guard, keys } from '@danmaku/store';
import { GEARS_KEY } from '@danmaku/switches';
import { likesKey } from '../likes.js';
import { requireUser, type FrontDeps } from '../context.js';

const USER_ID = { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROL_CHARS } as const;
const MAX_DURATION_SEC = 30 * 24 * 3600;
const STATS_SAMPLE = 200;
const STATS_WINDOW_MS = 10_000;

/** Streamer tools are for the room's streamer and admins, from the token (API.md, Auth). */
export function requireModerator(deps: FrontDeps, request: FastifyRequest, roomId: string): Principal {
  const principal = requireUser(deps, request);
  if (!canModerate(principal, roomId)) {
    throw new ApiError(403, 'forbidden', `Only the streamer of room ${roomId} or an admin may do this.`);
  }
  return principal;
}

function moderationOf(deps: FrontDeps): Moderation {
  if (!deps.moderation) throw new ApiError(503, 'moderation_unavailable', 'Moderation is not configured on this server.', 5);
  return deps.moderation;
}

const userParams = {
  type: 'object',
  required: ['roomId', 'userId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, userId: USER_ID },
} as const;

type Room = { Params: { roomId: string } };
type RoomUser = { Params: { roomId: string; userId: string } };

/** Streamer and moderator tools (issue 5): mutes, bans, deletes, slow mode, pinned notice, stats. */
export function moderationRoutes(app: FastifyInstance, deps: FrontDeps): void {
  const { store } = deps;

  app.post<Room & { Body: { userId: string; durationSec: number } }>(
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
      requireModerator(deps, request, roomId);
      const until = await moderationOf(deps).mute(roomId, request.body.userId, request.body.durationSec);
      return { userId: request.body.userId, mutedUntil: until };
    },
  );

  app.delete<RoomUser>('/v1/rooms/:roomId/mutes/:userId', { schema: { params: userParams } }, async (request) => {
    const { roomId, userId } = request.params;
    requireModerator(deps, request, roomId);
    await moderationOf(deps).unmute(roomId, userId);
    return { userId, muted: false };
  });

  app.post<Room & { Body: { userId: string; durationSec?: number } }>(
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
      const principal = requireModerator(deps, request, roomId);
      if (request.body.userId === principal.id) throw new ApiError(400, 'invalid_request', 'You cannot ban yourself.');
      const until = await moderationOf(deps).ban(roomId, request.body.userId, request.body.durationSec);
      // Out of the viewer list at once; connectors refuse the next join (they check bans).
      await store.leave(roomId, request.body.userId);
      return { userId: request.body.userId, bannedUntil: until };
    },
  );

  app.delete<RoomUser>('/v1/rooms/:roomId/bans/:userId', { schema: { params: userParams } }, async (request) => {
    const { roomId, userId } = request.params;
    requireModerator(deps, request, roomId);
    await moderationOf(deps).unban(roomId, userId);
    return { userId, banned: false };
  });

  app.delete<{ Params: { roomId: string; messageId: string }; Querystring: { type?: MessageType } }>(
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
      const principal = requireModerator(deps, request, roomId);
      // The tombstone first: it is what keeps the message out of replay for good, and a retry
      // after a failure here finds nothing half done.
      let archived: { liveId: string | null } = { liveId: null };
      if (deps.replay) archived = await deps.replay.archive.tombstone(roomId, messageId, principal.id);
      const types = request.query.type ? [request.query.type] : MESSAGE_TYPES;
      const removeFromLive = async (): Promise<boolean> => (await Promise.all(types.map((type) => store.deleteMessage(roomId, type, messageId)))).some(Boolean);
      const removedFromLive = await removeFromLive();
      // Not in the live window: it may still be on the bus (accepted, not yet stored). Try again
      // as it lands; the replay side needs nothing more, the tombstone already covers it.
      if (!removedFromLive) retryLater(removeFromLive, request.log);
      if (deps.replay) {
        const lives = new Set<string>();
        if (archived.liveId) lives.add(archived.liveId);
        const current = await deps.replay.lives.current(roomId).catch(() => null);
        if (current) lives.add(current.liveId);
        await Promise.all([...lives].map((liveId) => deps.replay?.replay.invalidate(liveId)));
      }
      return { id: messageId, removedFromLive, archived: deps.replay !== undefined };
    },
  );

  app.put<Room & { Body: { seconds: number } }>(
    '/v1/rooms/:roomId/slow-mode',
    {
      schema: {
        params: roomParamsSchema,
        body: { type: 'object', required: ['seconds'], additionalProperties: false, properties: { seconds: { type: 'integer', minimum: 0, maximum: 3600 } } },
      },
    },
    async (request) => {
      const { roomId } = request.params;
      requireModerator(deps, request, roomId);
      await moderationOf(deps).setSlowMode(roomId, request.body.seconds);
      return { slowModeSec: request.body.seconds };
    },
  );

  app.post<Room & { Body: { content: string } }>(
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
      const principal = requireModerator(deps, request, roomId);
      const moderation = moderationOf(deps);
      const now = Date.now();
      let message: UnsequencedMessage = {
        id: newMessageId(now),
        roomId,
        type: 'system',
        ts: now,
        user: { id: principal.id, name: principal.name },
        content: request.body.content,
      };
      message = (await moderation.contentCheck(message, principal, {})) ?? message;
      if (deps.replay) message = (await deps.replay.lives.stampCheck(message, principal, {})) ?? message;
      await deps.ingest.publish(message);
      const notice = { content: message.content ?? '', by: message.user, ts: now, messageId: message.id };
      await moderation.pin(roomId, notice);
      return reply.code(201).send({ id: message.id, ts: now, notice });
    },
  );

  app.delete<Room>('/v1/rooms/:roomId/notice', { schema: { params: roomParamsSchema } }, async (request) => {
    const { roomId } = request.params;
    requireModerator(deps, request, roomId);
    await moderationOf(deps).unpin(roomId);
    return { notice: null };
  });

  app.get<Room>('/v1/rooms/:roomId/notice', { schema: { params: roomParamsSchema } }, async (request) => ({
    notice: await moderationOf(deps).pinned(request.params.roomId),
  }));

  app.get<Room>('/v1/rooms/:roomId/stats', { schema: { params: roomParamsSchema } }, async (request) => {
    const { roomId } = request.params;
    requireModerator(deps, request, roomId);
    const now = Date.now();
    const read = store.read;
    const [online, likes, gears, seqs, recent, moderation, live] = await Promise.all([
      store.online(roomId, now),
      guard(() => read.get(likesKey(roomId))),
      guard(() => read.hmget(GEARS_KEY, ...MESSAGE_TYPES.map((t) => `${roomId}:${t}`))),
      guard(() => read.mget(...MESSAGE_TYPES.map((t) => keys.seq(roomId, t)))),
      Promise.all(MESSAGE_TYPES.map((t) => guard(() => read.zrange(keys.messages(roomId, t), -STATS_SAMPLE, -1)))),
      moderationOf(deps).room(roomId, now),
      deps.replay ? deps.replay.lives.current(roomId) : Promise.resolve(null),
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
      ...moderation,
    };
  });
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
