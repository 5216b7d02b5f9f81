import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CONTROL_CHAR_RANGES, LIMITS } from '@danmaku/protocol';

/**
 * Reads Bilibili's danmaku file (`<i><d p="seconds,mode,size,colour,unixTime,pool,userHash,rowId">text</d>...</i>`),
 * the form danmaku archives, downloaders and other sites' exports use, so a streamer can bring
 * the comments of an old recording along.
 */

export type FileMode = 'scroll' | 'top' | 'bottom';

/** One usable `<d>`. */
export interface FileDanmaku {
  offsetMs: number;
  mode: FileMode;
  /** 0xRRGGBB. */
  color: number;
  text: string;
  /** The sender's hash from the file, when it is one (hex or digits). */
  userHash: string | null;
  /** The file's own id of the row (Bilibili's dmid; this system's message id in its own files). */
  rowId: string | null;
  /**
   * What tells this row apart from every other of the same file, stable across imports: the
   * file's row id when it has one, else its time, mode, colour and text with the how-manieth
   * such row it is (two identical rows at one moment are two comments).
   */
  key: string;
}

export interface DanmakuFile {
  danmaku: FileDanmaku[];
  /** `<d>` rows that cannot be a comment here: no text, text too long or with control characters, an unknown mode, a bad time. */
  invalid: number;
}

/** A file that is not a danmaku file at all; nothing of it may be imported. */
export class DanmakuFileError extends Error {
  constructor(
    message: string,
    readonly reason: 'malformed' | 'too_many',
  ) {
    super(message);
    this.name = 'DanmakuFileError';
  }
}

const MODES: Record<string, FileMode> = { '1': 'scroll', '2': 'scroll', '3': 'scroll', '4': 'bottom', '5': 'top' };
const CONTROL = new RegExp(`[${CONTROL_CHAR_RANGES}]`, 'u');
const WHITE = 0xffffff;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // A comment's own spaces are its text; only the indentation between elements goes.
  trimValues: false,
  processEntities: true,
  // Also decodes numeric character references (&#20013;), which XML files use.
  htmlEntities: true,
  isArray: (name) => name === 'd',
});

export interface ReadOptions {
  /** Most `<d>` rows a file may hold (DanmakuFileError 'too_many' beyond). */
  maxRows: number;
  /** Latest time a comment may have (ms). */
  maxOffsetMs: number;
}

/** Parses a whole file; throws DanmakuFileError when it is not well-formed Bilibili XML or holds too many rows. */
export function readDanmakuFile(xml: string, options: ReadOptions): DanmakuFile {
  // Bilibili's files never declare a DTD; refusing one keeps entity expansion out of reach.
  if (/<!DOCTYPE/i.test(xml)) throw new DanmakuFileError('A danmaku file has no DOCTYPE.', 'malformed');
  // Counted before parsing: a file of many tiny rows would otherwise hold the event loop for seconds.
  const tags = countRowTags(xml);
  if (tags > options.maxRows) throw new DanmakuFileError(`The file holds ${tags} comments; at most ${options.maxRows} are imported at once.`, 'too_many');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new DanmakuFileError(`The file is not well-formed XML (line ${valid.err.line}: ${valid.err.msg}).`, 'malformed');
  const doc = parser.parse(xml) as Record<string, unknown>;
  const root = doc.i;
  if (typeof root !== 'object' || root === null) {
    // An <i> with nothing but white space in it parses to that text: a file with no comments.
    if (typeof root === 'string' && root.trim() === '') return { danmaku: [], invalid: 0 };
    throw new DanmakuFileError('The file\'s root element must be <i>, as in a Bilibili danmaku file.', 'malformed');
  }
  const rows = ((root as Record<string, unknown>).d ?? []) as unknown[];
  const danmaku: FileDanmaku[] = [];
  const seen = new Map<string, number>();
  let invalid = 0;
  for (const row of rows) {
    const d = readRow(row, options.maxOffsetMs);
    if (!d) {
      invalid++;
      continue;
    }
    if (d.rowId === null) {
      const content = `${d.offsetMs}|${d.mode}|${d.color}|${d.text}`;
      const n = (seen.get(content) ?? 0) + 1;
      seen.set(content, n);
      d.key = `c|${content}|${n}`;
    }
    danmaku.push(d);
  }
  return { danmaku, invalid };
}

/** `<d` start tags (`<d `, `<d>`, `<d/`): the rows, or more when a comment or CDATA section holds such text. */
function countRowTags(xml: string): number {
  let n = 0;
  for (let at = xml.indexOf('<d'); at !== -1; at = xml.indexOf('<d', at + 2)) {
    const next = xml.charCodeAt(at + 2);
    // space, tab, CR, LF, '>', '/'
    if (next === 0x20 || next === 0x09 || next === 0x0d || next === 0x0a || next === 0x3e || next === 0x2f) n++;
  }
  return n;
}

function readRow(row: unknown, maxOffsetMs: number): FileDanmaku | null {
  // `<d p="..."/>` and `<d p="...">text</d>` both parse to an object; anything else is not a row.
  if (typeof row !== 'object' || row === null) return null;
  const { p, '#text': body } = row as { p?: unknown; '#text'?: unknown };
  if (typeof p !== 'string') return null;
  const text = typeof body === 'string' ? body.trim() : '';
  const chars = [...text].length;
  if (chars === 0 || chars > LIMITS.commentMaxChars || CONTROL.test(text)) return null;
  const fields = p.split(',');
  const seconds = Number(fields[0]);
  if (fields[0] === '' || !Number.isFinite(seconds) || seconds < 0) return null;
  const offsetMs = Math.round(seconds * 1000);
  if (offsetMs > maxOffsetMs) return null;
  const mode = MODES[(fields[1] ?? '1').trim()];
  if (!mode) return null;
  const colorField = Number(fields[3]);
  const color = Number.isInteger(colorField) && colorField >= 0 && colorField <= WHITE ? colorField : WHITE;
  const userHash = /^[0-9A-Za-z]{1,32}$/.test(fields[6] ?? '') ? (fields[6] as string) : null;
  const rowId = /^[0-9A-Za-z_-]{1,64}$/.test(fields[7] ?? '') ? (fields[7] as string) : null;
  return { offsetMs, mode, color, text, userHash, rowId, key: rowId === null ? '' : `r|${rowId}` };
}
