/**
 * Uploads a Bilibili XML danmaku file into a live (`POST /v1/lives/:liveId/import`): the studio's
 * "Import danmaku file". The body is the file itself, not JSON, so this is not `api()`.
 */
import { readAnswer } from './common.js';

export interface ImportResult {
  imported: number;
  skipped: number;
  invalid: number;
}

export async function importDanmakuFile(liveId: string, file: Blob, token: string): Promise<ImportResult> {
  const response = await fetch(`/v1/lives/${encodeURIComponent(liveId)}/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/xml' },
    body: file,
  });
  return readAnswer<ImportResult>(response);
}

/** What the streamer reads after an import. */
export function describeImport(liveId: string, r: ImportResult): string {
  const already = r.skipped - r.invalid;
  const parts = [`${r.imported} comment${r.imported === 1 ? '' : 's'} imported into live ${liveId}`];
  if (already > 0) parts.push(`${already} already there`);
  if (r.invalid > 0) parts.push(`${r.invalid} not usable (no text, too long, or a mode other than scroll, top or bottom)`);
  return parts.join('; ') + '.';
}
