import type { LiveRecord, LiveUrls, ReplayStack } from '@danmaku/archive';
import { ApiError, ROOM_ID_PATTERN, roomParamsSchema } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontDeps } from '../context.js';
import { requireModerator } from './moderation.js';

export const LIVE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** A live's video (HLS .m3u8, MP4 or WebM): an absolute http(s) URL the viewers' browsers fetch. */
const videoUrl = { type: 'string', minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' } as const;
const nullableVideoUrl = { anyOf: [videoUrl, { type: 'null' }] } as const;

function checkUrl(field: string, url: string | null | undefined): void {
  if (typeof url !== 'string') return;
  try {
    new URL(url);
  } catch {
    throw new ApiError(400, 'invalid_request', `"${field}" is not a URL.`);
  }
}

const withDuration = (l: LiveRecord) => ({
  ...l,
  playbackUrl: l.playbackUrl ?? null,
  recordingUrl: l.recordingUrl ?? null,
  durationMs: l.endedAt === null ? null : l.endedAt - l.startedAt,
});

export function replayOf(deps: FrontDeps): ReplayStack {
  if (!deps.replay) throw new ApiError(503, 'archive_unavailable', 'Lives and replay are not configured on this server.', 5);
  return deps.replay;
}

/** A streamer starts and ends the lives of a room (API.md); anyone lists them (replay players). */
export function liveRoutes(app: FastifyInstance, deps: FrontDeps): void {
  app.post<{ Params: { roomId: string }; Body: { playbackUrl?: string } | undefined }>(
    '/v1/rooms/:roomId/lives',
    {
      schema: { params: roomParamsSchema, body: { type: 'object', additionalProperties: false, properties: { playbackUrl: videoUrl } } },
      // The body is optional (API.md: a start needs none): no body reads as an empty one.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const { roomId } = request.params;
      const principal = requireModerator(deps, request, roomId);
      const playbackUrl = request.body?.playbackUrl;
      checkUrl('playbackUrl', playbackUrl);
      const stack = replayOf(deps);
      const live = await stack.lives.start(roomId, principal);
      if (playbackUrl !== undefined) await stack.archive.setLiveUrls(live.liveId, { playbackUrl });
      return reply.code(201).send({ ...live, playbackUrl: playbackUrl ?? null });
    },
  );

  // The streamer sets or clears the live's video links while it is on or after it ended (the
  // recording usually exists only then); replay pages and viewers read them from the live.
  app.patch<{ Params: { roomId: string; liveId: string }; Body: LiveUrls }>(
    '/v1/rooms/:roomId/lives/:liveId',
    {
      schema: {
        params: {
          type: 'object',
          required: ['roomId', 'liveId'],
          properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
        },
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { playbackUrl: nullableVideoUrl, recordingUrl: nullableVideoUrl } },
      },
    },
    async (request) => {
      const { roomId, liveId } = request.params;
      requireModerator(deps, request, roomId);
      checkUrl('playbackUrl', request.body.playbackUrl);
      checkUrl('recordingUrl', request.body.recordingUrl);
      const stack = replayOf(deps);
      const known = await stack.archive.live(liveId);
      if (!known || known.roomId !== roomId) throw new ApiError(404, 'live_not_found', `Room ${roomId} has no live ${liveId}.`);
      const updated = (await stack.archive.setLiveUrls(liveId, request.body)) ?? known;
      await stack.replay.liveChanged(liveId);
      return withDuration(updated);
    },
  );

  app.get<{ Params: { roomId: string }; Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/lives',
    {
      schema: {
        params: roomParamsSchema,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } } },
      },
    },
    async (request) => {
      const lives = await replayOf(deps).archive.livesOf(request.params.roomId, request.query.limit ?? 20);
      return { lives: lives.map(withDuration) };
    },
  );

  app.post<{ Params: { roomId: string; liveId: string } }>(
    '/v1/rooms/:roomId/lives/:liveId/end',
    {
      schema: {
        params: {
          type: 'object',
          required: ['roomId', 'liveId'],
          properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
        },
      },
    },
    async (request) => {
      const { roomId, liveId } = request.params;
      requireModerator(deps, request, roomId);
      return replayOf(deps).lives.end(roomId, liveId);
    },
  );
}
