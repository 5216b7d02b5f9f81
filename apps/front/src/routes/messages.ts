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
import type { FastifyInstance } from '@danmaku/http';
import { requireUser, type FrontDeps } from '../context.js';

const polls = counter<'source'>({ name: 'danmaku_polls_total', help: 'Polls answered, by source', labelNames: ['source'] });

const DEFAULT_POLL_LIMIT = 100;
const DEFAULT_RETRY_AFTER_MS = 2000;

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

export function messageRoutes(app: FastifyInstance, deps: FrontDeps): void {
  const { store, ingest } = deps;

  app.post<{ Params: { roomId: string }; Body: SendMessageBody }>(
    '/v1/rooms/:roomId/messages',
    { schema: { params: roomParamsSchema, body: sendMessageBodySchema } },
    async (request, reply) => {
      const principal = requireUser(deps, request);
      return reply.code(202).send(await ingest.accept(request.params.roomId, request.body, principal));
    },
  );

  app.get<{ Params: { roomId: string }; Querystring: PollQuery }>(
    '/v1/rooms/:roomId/messages',
    { schema: { params: roomParamsSchema, querystring: pollQuerySchema } },
    async (request, reply) => {
      const { roomId } = request.params;
      const types = parseTypes(request.query.types);
      let cursor: Cursor | null = null;
      if (request.query.cursor !== undefined) {
        cursor = decodeCursor(request.query.cursor);
        if (!cursor) throw new ApiError(400, 'invalid_cursor', 'The cursor is not one this server gave out; poll without it to start again.');
      }
      const limit = request.query.limit ?? DEFAULT_POLL_LIMIT;
      const wants = types.map((type) => ({ type, cursorSeq: cursor?.[type] ?? null }));
      const results = await store.readMany(roomId, wants, limit);
      polls.inc({ source: 'redis' });

      const next: Cursor = {};
      const parts: string[] = [];
      let skipped = false;
      for (const { type } of wants) {
        const result = results.get(type);
        if (!result) continue;
        next[type] = result.cursorSeq;
        skipped ||= result.skipped;
        for (const json of result.messages) parts.push(json);
      }
      // Stored messages are JSON already: splice them in rather than parse and re-encode.
      const body = `{"messages":[${parts.join(',')}],"cursor":"${encodeCursor(next)}","skipped":${skipped},"retryAfterMs":${DEFAULT_RETRY_AFTER_MS}}`;
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );
}
