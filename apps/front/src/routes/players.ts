import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { LiveRecord } from '@danmaku/archive';
import { ASS_DEFAULTS, AssWriter } from '@danmaku/ass';
import type { Principal } from '@danmaku/auth';
import { ApiError } from '@danmaku/model';
import { LIMITS, isRoomId, type CommentMode, type MessageType, type SendMessageBody } from '@danmaku/protocol';
import type { FastifyInstance, FastifyRequest } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { colorToInt, intToColor, LIVE_ID_PATTERN, liveParams, liveQuerySchema, parseTypes, typesField, WHITE } from './helpers.js';

/**
 * What web video players already load: DPlayer's danmaku backend (API v3) and the Bilibili XML
 * danmaku file. Both are views of the same comments the replay reader serves; a DPlayer send is
 * an ordinary send.
 */

const COMMENTS: ReadonlySet<MessageType> = new Set<MessageType>(['comment']);
/** A page of the archive: the replay reader's own limit. */
const PAGE = 1000;
const DPLAYER_DEFAULT_MAX = 5000;
const DPLAYER_MAX = 50_000;

/** The fields of a stored comment these formats draw. */
interface Comment {
  id: string;
  ts: number;
  offsetMs: number;
  userId: string;
  userName: string;
  content: string;
  color: number;
  mode: CommentMode;
}

/** DPlayer's type: 0 scroll (DPlayer says "right"), 1 top, 2 bottom. */
export function modeToDplayer(mode: unknown): 0 | 1 | 2 {
  return mode === 'top' ? 1 : mode === 'bottom' ? 2 : 0;
}

export function dplayerToMode(type: number | string | undefined): CommentMode {
  if (type === 1 || type === 'top') return 'top';
  if (type === 2 || type === 'bottom') return 'bottom';
  return 'scroll';
}

/** Bilibili's mode: 1 scroll, 4 bottom, 5 top. */
export function modeToBilibili(mode: CommentMode): 1 | 4 | 5 {
  return mode === 'top' ? 5 : mode === 'bottom' ? 4 : 1;
}

/** What a message says on screen: a comment's or notice's text, a gift as the pages word it. */
function textOf(m: Record<string, unknown>, userName: string): string | null {
  if (typeof m.content === 'string') return m.content;
  const gift = m.gift as { giftId?: unknown; count?: unknown } | undefined;
  if (m.type === 'gift' && typeof gift?.giftId === 'string') return `${userName} sent ${gift.giftId} × ${Number(gift.count ?? 1)}`;
  return null;
}

function toComment(json: string): Comment | null {
  const m = JSON.parse(json) as Record<string, unknown>;
  const user = (m.user ?? {}) as { id?: unknown; name?: unknown };
  const userName = typeof user.name === 'string' ? user.name : '';
  const content = textOf(m, userName);
  if (content === null || typeof m.offsetMs !== 'number') return null;
  return {
    id: String(m.id),
    ts: typeof m.ts === 'number' ? m.ts : 0,
    offsetMs: m.offsetMs,
    userId: typeof user.id === 'string' ? user.id : '',
    userName,
    content,
    color: colorToInt(m.color),
    mode: m.mode === 'top' || m.mode === 'bottom' ? m.mode : 'scroll',
  };
}

/** The comments of a live in offset order, page by page, as the archive holds them. */
async function* comments(deps: FrontContext, liveId: string, max = Infinity, types: ReadonlySet<MessageType> = COMMENTS): AsyncGenerator<Comment> {
  const { replay } = deps.replay;
  let from: number | null = 0;
  let sent = 0;
  // Each page moves `from` forward (it is the end of what was read), so the loop ends.
  while (from !== null && sent < max) {
    const page = await replay.read(liveId, { from, limit: Math.min(PAGE, max - sent), types });
    for (const json of page.messages) {
      const comment = toComment(json);
      if (comment && sent < max) {
        sent++;
        yield comment;
      }
    }
    from = page.next;
  }
}

/**
 * A player's `id`: a live id, or a room id standing for the room's live now (else its latest).
 * null: the room has had no live yet.
 */
async function resolveLive(deps: FrontContext, id: string): Promise<LiveRecord | null> {
  const { archive, lives } = deps.replay;
  const live = await archive.live(id);
  if (live) return live;
  if (!isRoomId(id)) return null;
  const current = await lives.current(id);
  if (current) return { liveId: current.liveId, roomId: id, startedAt: current.startedAt, endedAt: null };
  const [latest] = await archive.livesOf(id, 1);
  return latest ?? null;
}

// XML 1.0 cannot carry most control characters even escaped: they are dropped.
const XML_INVALID = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function xmlEscape(text: string): string {
  return text.replace(XML_INVALID, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/** Bilibili's files carry a hash of the sender, not the id: the same idea here. */
function userHash(userId: string): string {
  return createHash('sha1').update(userId).digest('hex').slice(0, 8);
}

export function bilibiliLine(c: Comment): string {
  const p = [(c.offsetMs / 1000).toFixed(3), modeToBilibili(c.mode), 25, c.color, Math.floor(c.ts / 1000), 0, userHash(c.userId), c.id];
  return `<d p="${xmlEscape(p.join(','))}">${xmlEscape(c.content)}</d>\n`;
}

interface DplayerQuery {
  id: string;
  max?: number;
}

interface DplayerBody {
  id: string;
  text: string;
  author?: string;
  time?: number;
  color?: number | string;
  type?: number | string;
  token?: string;
}

const playerId = { type: 'string', pattern: LIVE_ID_PATTERN, description: 'A live id, or a room id (its live now, else its latest live).' } as const;

/** The token a player sends: Authorization first, else DPlayer's `token` body field. */
function principalOf(deps: FrontContext, request: FastifyRequest, bodyToken: string | undefined): Principal {
  const fromHeader = request.principal;
  if (fromHeader) return fromHeader;
  if (bodyToken) return deps.auth.verify(bodyToken);
  throw new ApiError(401, 'missing_token', 'This needs a token: send "Authorization: Bearer TOKEN" or "token" in the body (DPlayer\'s danmaku.token).');
}

export async function playerRoutes(app: FastifyInstance, deps: FrontContext): Promise<void> {
  app.get<{ Querystring: DplayerQuery }>(
    '/v1/dplayer/v3/',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['id'],
          // Players add cache busters and their own parameters.
          additionalProperties: true,
          properties: { id: playerId, max: { type: 'integer', minimum: 1, maximum: DPLAYER_MAX } },
        },
      },
    },
    async (request) => {
      const live = await resolveLive(deps, request.query.id);
      const data: [number, number, number, string, string][] = [];
      if (live) {
        for await (const c of comments(deps, live.liveId, request.query.max ?? DPLAYER_DEFAULT_MAX)) {
          data.push([c.offsetMs / 1000, modeToDplayer(c.mode), c.color, c.userName, c.content]);
        }
      }
      return { code: 0, data };
    },
  );

  app.post<{ Body: DplayerBody }>(
    '/v1/dplayer/v3/',
    {
      schema: {
        body: {
          type: 'object',
          required: ['id', 'text'],
          // Other players speak this API too and add fields of their own; those are ignored.
          additionalProperties: true,
          properties: {
            id: playerId,
            text: { type: 'string', minLength: 1, maxLength: LIMITS.commentMaxChars },
            author: { type: 'string', maxLength: 64, description: 'Ignored: the name comes from the token.' },
            time: { type: 'number', description: 'Ignored: the server stamps the offset in the live.' },
            color: { anyOf: [{ type: 'integer', minimum: 0, maximum: WHITE }, { type: 'string', pattern: '^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$' }] },
            type: { anyOf: [{ type: 'integer', enum: [0, 1, 2] }, { type: 'string', enum: ['right', 'scroll', 'top', 'bottom'] }] },
            token: { type: 'string', maxLength: 4096 },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const principal = principalOf(deps, request, body.token);
      let roomId: string;
      const { archive, lives } = deps.replay;
      const live = await archive.live(body.id);
      if (live) {
        const current = await lives.current(live.roomId);
        if (current?.liveId !== live.liveId) throw new ApiError(409, 'live_already_ended', `Live ${live.liveId} is over; send to its room's live instead.`);
        roomId = live.roomId;
      } else if (isRoomId(body.id)) {
        roomId = body.id;
      } else {
        throw new ApiError(404, 'live_not_found', `No live or room ${body.id}.`);
      }
      const send = styled({ type: 'comment', content: body.text }, intToColor(body.color), dplayerToMode(body.type));
      const accepted = await deps.send.accept(roomId, send, principal, { ip: request.ip });
      return reply.code(202).send({ code: 0, data: accepted });
    },
  );

  app.get<{ Params: { liveId: string } }>('/v1/lives/:liveId/danmaku.xml', { schema: { params: liveParams } }, async (request, reply) => {
    const live = await deps.replay.replay.live(request.params.liveId);
    const head =
      '<?xml version="1.0" encoding="UTF-8"?>\n<i>\n' +
      `<chatserver>danmaku</chatserver>\n<chatid>${xmlEscape(live.liveId)}</chatid>\n<mission>0</mission>\n<maxlimit>${PAGE}</maxlimit>\n<state>0</state>\n<real_name>0</real_name>\n<source>k-v</source>\n`;
    return reply
      .type('application/xml; charset=utf-8')
      .header('Content-Disposition', `inline; filename="${live.liveId}.xml"`)
      .send(Readable.from(fileOf(head, comments(deps, live.liveId), bilibiliLine, '</i>\n')));
  });

  app.get<{ Params: { liveId: string }; Querystring: AssQuery }>(
    '/v1/lives/:liveId/danmaku.ass',
    {
      schema: liveQuerySchema({
        width: { type: 'integer', minimum: 160, maximum: 7680 },
        height: { type: 'integer', minimum: 90, maximum: 4320 },
        fontSize: { type: 'integer', minimum: 8, maximum: 400 },
        duration: { type: 'number', minimum: 1, maximum: 60 },
        opacity: { type: 'number', minimum: 0.05, maximum: 1 },
        types: typesField,
      }),
    },
    async (request, reply) => {
      const q = request.query;
      const types = new Set(parseTypes(q.types ?? 'comment'));
      const live = await deps.replay.replay.live(request.params.liveId);
      const height = q.height ?? ASS_DEFAULTS.height;
      const ass = new AssWriter({
        ...ASS_DEFAULTS,
        width: q.width ?? ASS_DEFAULTS.width,
        height,
        // The pages' size at 1080 lines, scaled with the script's height.
        fontSize: q.fontSize ?? Math.max(8, Math.round((ASS_DEFAULTS.fontSize * height) / ASS_DEFAULTS.height)),
        scrollSeconds: q.duration ?? ASS_DEFAULTS.scrollSeconds,
        opacity: q.opacity ?? ASS_DEFAULTS.opacity,
        title: `live ${live.liveId} of room ${live.roomId}`,
      });
      const line = (c: Comment): string => ass.line({ offsetMs: c.offsetMs, text: c.content, color: c.color, mode: c.mode });
      // A byte order mark: VSFilter-based players read a file without one in the system's code page.
      return reply
        .type('text/x-ssa; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="${live.liveId}.ass"`)
        .send(Readable.from(fileOf('\ufeff' + ass.header(), comments(deps, live.liveId, Infinity, types), line, '')));
    },
  );
}

interface AssQuery {
  width?: number;
  height?: number;
  fontSize?: number;
  duration?: number;
  opacity?: number;
  types?: string;
}

/**
 * A file written as the archive is paged (a long live never sits whole in memory): the head, a
 * line per comment in chunks of 200, the tail.
 */
async function* fileOf(head: string, source: AsyncIterable<Comment>, line: (c: Comment) => string, tail: string): AsyncGenerator<string> {
  yield head;
  let lines: string[] = [];
  for await (const c of source) {
    lines.push(line(c));
    if (lines.length >= 200) {
      yield lines.join('');
      lines = [];
    }
  }
  yield lines.join('') + tail;
}

/** The comment send a player asked for, with its style when it is not the default. */
function styled(body: SendMessageBody, color: string | undefined, mode: CommentMode): SendMessageBody {
  const style: { color?: string; mode?: CommentMode } = {};
  if (color !== undefined && color !== '#ffffff') style.color = color;
  if (mode !== 'scroll') style.mode = mode;
  return { ...body, ...style };
}
