import { ApiError, DEFAULT_POLL_TYPES, isMessageType, type MessageType } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontDeps } from '../context.js';
import { LIVE_ID_PATTERN, replayOf } from './lives.js';

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;
const MAX_OFFSET = 7 * 24 * 3600 * 1000;

const liveParams = {
  type: 'object',
  required: ['liveId'],
  properties: { liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
} as const;

interface ReplayQuerystring {
  from?: number;
  to?: number;
  types?: string;
  limit?: number;
}

function parseTypes(text: string | undefined): Set<MessageType> {
  if (text === undefined || text === '') return new Set(DEFAULT_POLL_TYPES);
  const types = new Set<MessageType>();
  for (const t of text.split(',').map((s) => s.trim())) {
    if (!isMessageType(t)) throw new ApiError(400, 'invalid_request', `Unknown message type "${t}"; use comment, gift, like, enter or system.`);
    types.add(t);
  }
  return types;
}

/** Replay of a live's danmaku by offset window (API.md): local cache -> replay Redis -> MySQL. */
export function replayRoutes(app: FastifyInstance, deps: FrontDeps): void {
  app.get<{ Params: { liveId: string } }>('/v1/lives/:liveId', { schema: { params: liveParams } }, async (request) => {
    const live = await replayOf(deps).replay.live(request.params.liveId);
    return { ...live, playbackUrl: live.playbackUrl ?? null, recordingUrl: live.recordingUrl ?? null, durationMs: live.endedAt === null ? null : live.endedAt - live.startedAt };
  });

  app.get<{ Params: { liveId: string }; Querystring: ReplayQuerystring }>(
    '/v1/lives/:liveId/messages',
    {
      schema: {
        params: liveParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'integer', minimum: 0, maximum: MAX_OFFSET },
            to: { type: 'integer', minimum: 0, maximum: MAX_OFFSET },
            types: { type: 'string', maxLength: 64 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
          },
        },
      },
    },
    async (request, reply) => {
      const { from = 0, to, limit = DEFAULT_LIMIT } = request.query;
      if (to !== undefined && to <= from) throw new ApiError(400, 'invalid_request', '"to" must be greater than "from" (ms since the live started; "to" is exclusive).');
      const page = await replayOf(deps).replay.read(request.params.liveId, { from, to, limit, types: parseTypes(request.query.types) });
      // Archived messages are JSON already: splice them in rather than parse and re-encode.
      return reply.type('application/json; charset=utf-8').send(`{"messages":[${page.messages.join(',')}],"next":${page.next === null ? 'null' : page.next}}`);
    },
  );
}
