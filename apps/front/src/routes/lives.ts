import type { LiveUrls } from '@danmaku/archive';
import { ApiError, roomParamsSchema } from '@danmaku/model';
import { CONTROL_CHAR_RANGES, ROOM_ID_PATTERN } from '@danmaku/protocol';
import { restricted, type FastifyInstance } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { LIVE_ID_PATTERN, liveView } from './helpers.js';

const liveParams = {
  type: 'object',
  required: ['roomId', 'liveId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
} as const;

/**
 * A live's video (HLS .m3u8, MP4 or WebM): an absolute http(s) URL the viewers' browsers fetch.
 * No spaces and no control characters (the pages put it in a video element's src).
 */
const videoUrl = { type: 'string', minLength: 8, maxLength: 2048, pattern: `^https?://[^\\s${CONTROL_CHAR_RANGES}]+$` } as const;
const nullableVideoUrl = { anyOf: [videoUrl, { type: 'null' }] } as const;

function checkUrl(field: string, url: string | null | undefined): void {
  if (typeof url !== 'string') return;
  try {
    new URL(url);
  } catch {
    throw new ApiError(400, 'invalid_request', `"${field}" is not a URL.`);
  }
}

/** A streamer starts and ends the lives of a room (API.md); anyone lists them (replay players). */
export async function liveRoutes(app: FastifyInstance, { replay }: FrontContext): Promise<void> {
  app.get<{ Params: { roomId: string }; Querystring: { limit?: number } }>(
    '/v1/rooms/:roomId/lives',
    {
      schema: {
        params: roomParamsSchema,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } } },
      },
    },
    async (request) => {
      const lives = await replay.archive.livesOf(request.params.roomId, request.query.limit ?? 20);
      return { lives: lives.map(liveView) };
    },
  );

  await app.register(
    restricted({ role: 'moderator' }, (streamer) => {
      streamer.post<{ Params: { roomId: string }; Body: { playbackUrl?: string } | undefined }>(
        '/v1/rooms/:roomId/lives',
        {
          schema: { params: roomParamsSchema, body: { type: 'object', additionalProperties: false, properties: { playbackUrl: videoUrl } } },
          // The body is optional (API.md: a start needs none): no body reads as an empty one.
          preValidation: async (request) => {
            request.body ??= {};
          },
        },
        async (request, reply) => {
          const playbackUrl = request.body?.playbackUrl;
          checkUrl('playbackUrl', playbackUrl);
          const live = await replay.lives.start(request.params.roomId, request.user);
          if (playbackUrl !== undefined) await replay.archive.setLiveUrls(live.liveId, { playbackUrl });
          return reply.code(201).send({ ...live, playbackUrl: playbackUrl ?? null });
        },
      );

      streamer.post<{ Params: { roomId: string; liveId: string } }>('/v1/rooms/:roomId/lives/:liveId/end', { schema: { params: liveParams } }, async (request) =>
        replay.lives.end(request.params.roomId, request.params.liveId),
      );

      // The streamer sets or clears the live's video links while it is on or after it ended (the
      // recording usually exists only then); replay pages and viewers read them from the live.
      streamer.patch<{ Params: { roomId: string; liveId: string }; Body: LiveUrls }>(
        '/v1/rooms/:roomId/lives/:liveId',
        {
          schema: {
            params: liveParams,
            body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { playbackUrl: nullableVideoUrl, recordingUrl: nullableVideoUrl } },
          },
        },
        async (request) => {
          const { roomId, liveId } = request.params;
          checkUrl('playbackUrl', request.body.playbackUrl);
          checkUrl('recordingUrl', request.body.recordingUrl);
          const known = await replay.archive.live(liveId);
          if (!known || known.roomId !== roomId) throw new ApiError(404, 'live_not_found', `Room ${roomId} has no live ${liveId}.`);
          const updated = (await replay.archive.setLiveUrls(liveId, request.body)) ?? known;
          await replay.replay.liveChanged(liveId);
          return liveView(updated);
        },
      );
    }),
  );
}
