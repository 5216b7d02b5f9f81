import { createHash } from 'node:crypto';
import { toArchiveRow, type ArchiveRow } from '@danmaku/archive';
import { canModerate } from '@danmaku/auth';
import { DanmakuFileError, readDanmakuFile, type FileDanmaku } from '@danmaku/bilibili';
import { ApiError, type UnsequencedMessage } from '@danmaku/model';
import type { FastifyInstance, FastifyRequest } from '@danmaku/http';
import type { FrontContext } from '../context.js';
import { intToColor, LIVE_ID_PATTERN, liveParams, MAX_OFFSET } from './helpers.js';

/**
 * A streamer brings the danmaku of an old recording along: a Bilibili XML file posted to a live
 * becomes comments of that live in the archive, so they replay with it and show in every
 * export. Ids come from the live and each row (its row id, else its content and place), and the
 * archive keeps the first of an id, so posting the same file again adds nothing.
 */

/** About 50,000 comments of a typical file. */
export const IMPORT_MAX_BYTES = 8 * 1024 * 1024;
export const IMPORT_MAX_ROWS = 50_000;
const XML_TYPES = ['application/xml', 'text/xml'];
const liveIdRe = new RegExp(LIVE_ID_PATTERN);

/** The same id for the same row of the same live, whoever imports it and how often. */
function importedId(liveId: string, d: FileDanmaku): string {
  return 'i' + createHash('sha256').update(`${liveId}\0${d.key}`).digest('base64url').slice(0, 22);
}

export async function importRoutes(app: FastifyInstance, { replay, moderation }: FrontContext): Promise<void> {
  // This plugin's routes read XML and nothing else (no JSON, no text/plain: 415); everywhere else an XML body stays a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(XML_TYPES, { parseAs: 'string', bodyLimit: IMPORT_MAX_BYTES }, (_request, body, done) => done(null, body));

  /**
   * Who may import is checked before the body is read: a stranger's 8 MB upload is refused at
   * its headers. A malformed live id is left to the schema's 400.
   */
  async function mayImport(request: FastifyRequest): Promise<void> {
    const principal = request.principal;
    if (!principal) throw new ApiError(401, 'missing_token', 'This needs a token: send "Authorization: Bearer TOKEN".');
    const { liveId } = request.params as { liveId?: string };
    if (liveId === undefined || !liveIdRe.test(liveId)) return;
    const live = await replay.replay.live(liveId);
    if (!canModerate(principal, live.roomId)) throw new ApiError(403, 'forbidden', `Only the streamer of room ${live.roomId} or an admin may import danmaku into its lives.`);
  }

  app.post<{ Params: { liveId: string }; Body: unknown }>(
    '/v1/lives/:liveId/import',
    {
      bodyLimit: IMPORT_MAX_BYTES,
      onRequest: mayImport,
      schema: { params: liveParams },
    },
    async (request) => {
      if (typeof request.body !== 'string') throw new ApiError(400, 'malformed_xml', 'The body is empty; send the danmaku file as application/xml (Bilibili\'s <i><d p="..."> format).');
      const live = await replay.replay.live(request.params.liveId);
      let file;
      try {
        file = readDanmakuFile(request.body, { maxRows: IMPORT_MAX_ROWS, maxOffsetMs: MAX_OFFSET });
      } catch (err) {
        if (!(err instanceof DanmakuFileError)) throw err;
        if (err.reason === 'too_many') throw new ApiError(413, 'payload_too_large', err.message);
        throw new ApiError(400, 'malformed_xml', err.message);
      }
      let invalid = file.invalid;
      const rows: ArchiveRow[] = [];
      // A file this system wrote of this same live (its XML export) names each row by its message id: those are here already.
      const rowIds = file.danmaku.flatMap((d) => (d.rowId === null ? [] : [d.rowId]));
      const ours = rowIds.length === 0 ? new Set<string>() : await replay.archive.idsOfLive(live.liveId, rowIds);
      for (const d of file.danmaku) {
        if (d.rowId !== null && ours.has(d.rowId)) continue;
        let content: string;
        try {
          // The room's word filter, as for a send: masked, or the row left out in reject mode.
          content = moderation.filter.apply(d.text);
        } catch {
          invalid++;
          continue;
        }
        const message: UnsequencedMessage = {
          id: importedId(live.liveId, d),
          roomId: live.roomId,
          type: 'comment',
          ts: live.startedAt + d.offsetMs,
          user: { id: d.userHash ? `imported-${d.userHash}` : 'imported', name: 'imported' },
          content,
          ...(d.color === 0xffffff ? {} : { color: intToColor(d.color) }),
          ...(d.mode === 'scroll' ? {} : { mode: d.mode }),
          liveId: live.liveId,
          offsetMs: d.offsetMs,
        };
        const row = toArchiveRow(JSON.stringify(message));
        if (row) rows.push(row);
        else invalid++;
      }
      const imported = rows.length === 0 ? 0 : await replay.archive.insert(rows);
      // Cached segments, the live's reach and its density are stale here and on every front.
      if (imported > 0) await replay.replay.invalidate(live.liveId);
      return { imported, skipped: file.danmaku.length + file.invalid - imported, invalid };
    },
  );
}
