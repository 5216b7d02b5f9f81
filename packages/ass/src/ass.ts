import { LaneAllocator, textWidth, type LaneMode, type Placement } from './lanes.js';

/**
 * Danmaku as an ASS (Advanced SubStation Alpha v4.00+) subtitle file, the form local players
 * (mpv, VLC, PotPlayer, IINA: libass or VSFilter) draw over a recording, as danmaku2ass and
 * DanmakuFactory make them. One `Dialogue` per comment: a scrolling one moves right to left
 * (`\move`), a top or bottom one stands centred (`\an8` / `\an2` at `\pos`), its colour as
 * `\c&HBBGGRR&`, in lanes from LaneAllocator so none is drawn over another.
 */

export interface AssOptions {
  /** The script's resolution (PlayResX/Y): players scale it to the video. */
  width: number;
  height: number;
  fontSize: number;
  /** Seconds a scrolling comment takes to cross. */
  scrollSeconds: number;
  /** Seconds a top or bottom comment stands. */
  stillSeconds: number;
  /** 0..1 for the text and its outline. */
  opacity: number;
  /** How long a comment may wait for a free lane before it is left out (seconds). */
  maxDelaySeconds: number;
  fontName: string;
  /** Written as the script's Title. */
  title: string;
}

export const ASS_DEFAULTS: AssOptions = {
  width: 1920,
  height: 1080,
  fontSize: 36,
  scrollSeconds: 8,
  stillSeconds: 4,
  opacity: 1,
  maxDelaySeconds: 2,
  // Noto's CJK face holds Latin, kana, Hangul and Han; fontconfig picks a fallback when absent.
  fontName: 'Noto Sans CJK SC',
  title: 'Danmaku',
};

/** A comment to draw: its time in the video, text, 0xRRGGBB colour and mode. */
export interface AssComment {
  offsetMs: number;
  text: string;
  color: number;
  mode: LaneMode;
}

const OUTLINE = 1.5;
const STYLE = 'Danmaku';

/** The lane height for a font size: the glyphs' line plus their outline and a little air. */
export function laneHeightFor(fontSize: number): number {
  return Math.ceil(fontSize * 1.2 + 2 * OUTLINE);
}

/** `H:MM:SS.cc`, centiseconds, as ASS times are written. */
export function assTime(ms: number): string {
  const cs = Math.max(0, Math.round(ms / 10));
  const h = Math.floor(cs / 360_000);
  const m = Math.floor(cs / 6000) % 60;
  const s = Math.floor(cs / 100) % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(cs % 100).padStart(2, '0')}`;
}

/** 0xRRGGBB -> `&HBBGGRR&`, ASS's byte order. */
export function assColor(rgb: number): string {
  const r = (rgb >> 16) & 0xff;
  const g = (rgb >> 8) & 0xff;
  const b = rgb & 0xff;
  return `&H${hex(b)}${hex(g)}${hex(r)}&`;
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Text as an ASS line draws it literally: braces would open an override block and a backslash
 * an escape (`\N`, `\h`), so braces are escaped and a backslash is followed by a zero-width
 * space (what danmaku2ass does; libass shows both as typed). Line breaks become spaces: a
 * comment is one line. Everything else, CJK and emoji included, is left as it is.
 */
export function assText(text: string): string {
  return text
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/\\/g, '\\\u200b')
    .replace(/\{/g, '\\{')
    .replace(/\}/g, '\\}');
}

/** `[Script Info]`, `[V4+ Styles]` and the head of `[Events]`. */
export function assHeader(o: AssOptions): string {
  const alpha = hex(Math.round((1 - Math.min(1, Math.max(0, o.opacity))) * 255));
  return [
    '[Script Info]',
    `; Danmaku for local players: ${o.title.replace(/[\r\n]/g, ' ')}`,
    `Title: ${o.title.replace(/[\r\n]/g, ' ')}`,
    'ScriptType: v4.00+',
    `PlayResX: ${o.width}`,
    `PlayResY: ${o.height}`,
    // No wrapping: a long comment stays one line and runs off the screen's edge.
    'WrapStyle: 2',
    'ScaledBorderAndShadow: yes',
    'YCbCr Matrix: None',
    '',
    '[V4+ Styles]',
    'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding',
    `Style: ${STYLE},${o.fontName},${o.fontSize},&H${alpha}FFFFFF,&H${alpha}FFFFFF,&H${alpha}000000,&H${alpha}000000,0,0,0,0,100,100,0,0,1,${OUTLINE},0,7,0,0,0,1`,
    '',
    '[Events]',
    'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text',
    '',
  ].join('\n');
}

/** Dark text gets a light outline, or it would vanish on its own black border. */
function outlineTag(rgb: number): string {
  const r = (rgb >> 16) & 0xff;
  const g = (rgb >> 8) & 0xff;
  const b = rgb & 0xff;
  return 0.299 * r + 0.587 * g + 0.114 * b < 48 ? `\\3c${assColor(0xffffff)}` : '';
}

/** The Dialogue line of one placed comment. */
export function assDialogue(c: AssComment, p: Placement, o: AssOptions): string {
  const y = Math.round(p.y);
  let position: string;
  if (p.mode === 'scroll') {
    position = `\\move(${o.width},${y},${-p.width},${y})`;
  } else if (p.mode === 'top') {
    position = `\\an8\\pos(${Math.round(o.width / 2)},${y})`;
  } else {
    position = `\\an2\\pos(${Math.round(o.width / 2)},${y + laneHeightFor(o.fontSize)})`;
  }
  const color = c.color === 0xffffff ? '' : `\\c${assColor(c.color)}`;
  return `Dialogue: 0,${assTime(p.startMs)},${assTime(p.endMs)},${STYLE},,0,0,0,,{${position}${color}${outlineTag(c.color)}}${assText(c.text)}\n`;
}

/**
 * Writes the file as comments arrive (in time order): `header()` once, then `line(comment)` for
 * each, which is '' for a comment left out because no lane freed up within the wait.
 */
export class AssWriter {
  private readonly lanes: LaneAllocator;
  /** Comments left out so far. */
  dropped = 0;

  constructor(readonly options: AssOptions) {
    this.lanes = new LaneAllocator({
      width: options.width,
      height: options.height,
      laneHeight: laneHeightFor(options.fontSize),
      scrollMs: options.scrollSeconds * 1000,
      stillMs: options.stillSeconds * 1000,
      maxDelayMs: options.maxDelaySeconds * 1000,
      delayStepMs: 100,
    });
  }

  header(): string {
    return assHeader(this.options);
  }

  line(c: AssComment): string {
    const placed = this.lanes.place({ atMs: c.offsetMs, mode: c.mode, width: textWidth(c.text, this.options.fontSize) + Math.ceil(2 * OUTLINE) });
    if (!placed) {
      this.dropped++;
      return '';
    }
    return assDialogue(c, placed, this.options);
  }
}
