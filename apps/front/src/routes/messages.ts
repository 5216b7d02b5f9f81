import {
  ApiError,
  DEFAULT_POLL_TYPES,
  decodeCursor,
  encodeCursor,
  isMessageType,
  pollQuerySchema,
  roomParamsSchema,
  sendMessageBodySchema,
  type Cursor,
  type MessageType,
  type PollQuery,
  type SendMessageBody,
} from '@danmaku/model';
import { counter } from '@danmaku/observability';
import { restricted, type FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { redisSeconds } from '@danmaku/store';
import type { StreamWindow } from '../cache/room-cache.js';
import { readWindow, type BigRoomRules } from '../cache/shape.js';

const polls = counter<'source'>({ name: 'danmaku_polls_total', help: 'Polls answered, by source (cache hit ratio = cache / all)', labelNames: ['source'] });
// Bound once: label lookup per poll is measurable on the cached path.
const cachePolls = polls.labels('cache');
const redisPolls = polls.labels('redis');

const DEFAULT_POLL_LIMIT = 100;
const JSON_TYPE = 'application/json; charset=utf-8';

export function parseTypes(text: string | undefined): MessageType[] {
  if (text === undefined || text === '') return [...DEFAULT_POLL_TYPES];
  const types = [...new Set(text.split(',').map((t) => t.trim()))];
  for (const t of types) {
    if (!isMessageType(t)) {
      throw new ApiError(400, 'invalid_request', `Unknown message type "${t}"; use comment, gift, like, enter or system.`);
    }
  }
  return types as MessageType[];
}

/** Send (any caller with a token) and poll (anyone). */
export async function messageRoutes(app: FastifyInstance, ctx: FrontContext): Promise<void> {
  const { store, send, config, hot } = ctx;

  await app.register(
    restricted({ role: 'user' }, (viewer) => {
      viewer.post<{ Params: { roomId: string }; Body: SendMessageBody }>(
        '/v1/rooms/:roomId/messages',
        { schema: { params: roomParamsSchema, body: sendMessageBodySchema } },
        async (request, reply) => reply.code(202).send(await send.accept(request.params.roomId, request.body, request.user, { ip: request.ip })),
      );
    }),
  );

  app.get<{ Params: { roomId: string }; Querystring: PollQuery }>(
    '/v1/rooms/:roomId/messages',
    { schema: { params: roomParamsSchema, querystring: pollQuerySchema } },
    async (request, reply) => {
      const { roomId } = request.params;
      const big = hot.cache.notePoll(roomId);
      const switches = ctx.switches.get();
      let retryAfterMs = Math.max(config.pollRetryMs, switches.pollIntervalMs);
      if (hot.pressure.underPressure()) retryAfterMs *= 2;
      // A big room's answer to the same query is built once per refresh (only valid answers are kept).
      const answerKey = big ? `${retryAfterMs}|${switches.bigRoomSampleRatio}|${request.url.slice(request.url.indexOf('?') + 1 || request.url.length)}` : '';
      const ready = big ? hot.cache.answer(roomId, answerKey) : undefined;
      if (ready !== undefined) {
        cachePolls.inc();
        return reply.type(JSON_TYPE).send(ready);
      }
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
        const started = performance.now();
        const results = await store.readMany(roomId, wants, rules ? Math.min(limit, rules.limit) : limit);
        redisSeconds.observe({ op: 'poll' }, (performance.now() - started) / 1000);
        redisPolls.inc();
        for (const { type } of wants) {
          const result = results.get(type);
          if (!result) continue;
          next[type] = result.cursorSeq;
          skipped ||= result.skipped;
          for (const json of result.messages) parts.push(json);
        }
      }
      // Stored messages are JSON already: splice them in rather than parse and re-encode.
      const body = `{"messages":[${parts.join(',')}],"cursor":"${encodeCursor(next)}","skipped":${skipped},"retryAfterMs":${retryAfterMs}}`;
      if (fromCache) hot.cache.remember(roomId, answerKey, body);
      return reply.type(JSON_TYPE).send(body);
    },
  );
}
