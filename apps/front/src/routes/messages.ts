import { ApiError, pollQuerySchema, roomParamsSchema, type PollQuery } from '@danmaku/model';
import { decodeCursor, encodeCursor, sendMessageBodySchema, type Cursor, type MessageType, type SendMessageBody } from '@danmaku/protocol';
import { counter } from '@danmaku/observability';
import { answerEarlyFor, restricted, type FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { parseTypes } from './helpers.js';
import { redisSeconds, tsOf } from '@danmaku/store';
import type { StreamWindow } from '../cache/room-cache.js';
import { readWindow, type BigRoomRules } from '../cache/shape.js';
import { PollPace } from '../cache/pace.js';

const polls = counter<'source'>({ name: 'danmaku_polls_total', help: 'Polls answered, by source: cache (big rooms), memory (small rooms), redis', labelNames: ['source'] });
// Bound once: label lookup per poll is measurable on the cached path.
const cachePolls = polls.labels('cache');
const redisPolls = polls.labels('redis');
const memoryPolls = polls.labels('memory');

const DEFAULT_POLL_LIMIT = 100;
const JSON_TYPE = 'application/json; charset=utf-8';
const POLL_PREFIX = '/v1/rooms/';
const POLL_SUFFIX = '/messages';

/** Send (any caller with a token) and poll (anyone). */
export async function messageRoutes(app: FastifyInstance, ctx: FrontContext): Promise<void> {
  const { store, send, config, hot } = ctx;
  const pace = new PollPace(config.retention);

  await app.register(
    restricted({ role: 'user' }, (viewer) => {
      viewer.post<{ Params: { roomId: string }; Body: SendMessageBody }>(
        '/v1/rooms/:roomId/messages',
        { schema: { params: roomParamsSchema, body: sendMessageBodySchema } },
        async (request, reply) => reply.code(202).send(await send.accept(request.params.roomId, request.body, request.user, { ip: request.ip })),
      );
    }),
  );

  /** The key of a big room's ready answers to this query (see RoomCache.answer). */
  const pollKey = (url: string, big: boolean): { retryAfterMs: number; answerKey: string } => {
    const switches = ctx.switches.get();
    let retryAfterMs = Math.max(config.pollRetryMs, switches.pollIntervalMs);
    if (hot.pressure.underPressure()) retryAfterMs *= 2;
    return { retryAfterMs, answerKey: big ? `${retryAfterMs}|${switches.bigRoomSampleRatio}|${url.slice(url.indexOf('?') + 1 || url.length)}` : '' };
  };

  /** A big room's ready answer to this exact query (see RoomCache.answer), counted as a poll. */
  const readyAnswer = (roomId: string, url: string): Buffer | undefined => {
    const ready = hot.cache.isBig(roomId) ? hot.cache.answer(roomId, pollKey(url, true).answerKey) : undefined;
    if (ready === undefined) return undefined;
    hot.cache.notePoll(roomId);
    cachePolls.inc();
    return ready;
  };

  // Most polls of a big room get a ready answer: they are answered from the request line, before
  // Fastify routes the request (the room id is the raw path segment, which for a valid id is the
  // decoded one; anything else has no ready answer and takes the route below).
  answerEarlyFor(app, (url) => {
    if (!url.startsWith(POLL_PREFIX)) return undefined;
    const query = url.indexOf('?');
    const end = query === -1 ? url.length : query;
    if (end - POLL_SUFFIX.length <= POLL_PREFIX.length || !url.startsWith(POLL_SUFFIX, end - POLL_SUFFIX.length)) return undefined;
    const body = readyAnswer(url.slice(POLL_PREFIX.length, end - POLL_SUFFIX.length), url);
    return body === undefined ? undefined : { contentType: JSON_TYPE, body };
  });

  app.get<{ Params: { roomId: string }; Querystring: PollQuery }>(
    '/v1/rooms/:roomId/messages',
    {
      schema: { params: roomParamsSchema, querystring: pollQuerySchema },
      // A big room's ready answer goes out before validation and the handler: answers are kept
      // only for valid queries of valid rooms, under the query's exact text, so a hit is a query
      // that would pass validation and get these very bytes from the handler. A miss (any small
      // room) costs one map lookup here and takes the ordinary path.
      // (HEAD requests, and requests made with inject(), which no server listener sees.)
      onRequest: (request, reply, done) => {
        const ready = readyAnswer(request.params.roomId, request.url);
        if (ready === undefined) {
          done();
          return;
        }
        void reply.type(JSON_TYPE).send(ready);
      },
    },
    async (request, reply) => {
      const { roomId } = request.params;
      const big = hot.cache.notePoll(roomId);
      // A big room's answer to this query is built here once per refresh, then sent by the hook.
      const paced = pollKey(request.url, big);
      const { answerKey } = paced;
      let { retryAfterMs } = paced;
      const switches = ctx.switches.get();
      const types = parseTypes(request.query.types);
      let cursor: Cursor | null = null;
      if (request.query.cursor !== undefined) {
        cursor = decodeCursor(request.query.cursor);
        if (!cursor) throw new ApiError(400, 'invalid_cursor', 'The cursor is not one this server gave out; poll without it to start again.');
      }
      const limit = request.query.limit ?? DEFAULT_POLL_LIMIT;
      const rules: BigRoomRules | null = big ? { limit: config.bigRoomPollLimit, spanMs: config.bigRoomSpanMs, ratio: switches.bigRoomSampleRatio } : null;

      const next: Cursor = {};
      const parts: string[] = [];
      let skipped = false;
      let fromCache = false;
      // Big rooms are answered from this front's memory once their window is loaded: no Redis call.
      const windows = big ? types.map((type) => hot.cache.window(roomId, type)) : null;
      if (windows && windows.every((w) => w !== null)) {
        const now = Date.now();
        types.forEach((type, i) => {
          const read = readWindow(windows[i] as StreamWindow, type, cursor?.[type] ?? null, limit, rules, now);
          next[type] = read.cursorSeq;
          skipped ||= read.skipped;
          for (const json of read.messages) parts.push(json);
        });
        fromCache = true;
        cachePolls.inc();
      } else {
        const wants = types.map((type) => ({ type, cursorSeq: cursor?.[type] ?? null }));
        // A viewer back with an old cursor gets what is recent, not a replay of what went by: the
        // store's read applies that rule, so memory answers only when its first message is recent.
        const notBefore = cursor ? Date.now() - config.catchUpMaxAgeMs : 0;
        // A small room's poll: from this front's memory when it holds the answer, else from Redis.
        let remembered = big ? null : await hot.memory.read(roomId, wants, limit);
        if (remembered && notBefore > 0 && [...remembered.values()].some((r) => r.messages.length > 0 && tsOf(r.messages[0] as string) < notBefore)) remembered = null;
        let results: Map<MessageType, { messages: string[]; cursorSeq: number; newestSeq: number; skipped?: boolean }>;
        if (remembered) {
          results = remembered;
          memoryPolls.inc();
        } else {
          const started = performance.now();
          results = await store.readMany(roomId, wants, rules ? Math.min(limit, rules.limit) : limit, notBefore);
          redisSeconds.observe({ op: 'poll' }, (performance.now() - started) / 1000);
          redisPolls.inc();
        }
        for (const { type } of wants) {
          const result = results.get(type);
          if (!result) continue;
          next[type] = result.cursorSeq;
          skipped ||= result.skipped === true;
          for (const json of result.messages) parts.push(json);
          if (!big) retryAfterMs = pace.retryAfter(`${roomId}\n${type}`, result.newestSeq, retryAfterMs, result.messages.length >= limit);
        }
      }
      // Stored messages are JSON already: splice them in rather than parse and re-encode.
      const body = `{"messages":[${parts.join(',')}],"cursor":"${encodeCursor(next)}","skipped":${skipped},"retryAfterMs":${retryAfterMs}}`;
      if (fromCache) hot.cache.remember(roomId, answerKey, body);
      return reply.type(JSON_TYPE).send(body);
    },
  );
}
