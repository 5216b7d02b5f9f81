/**
 * Lanes for danmaku on a screen, so that no two comments are ever drawn over each other.
 *
 * The screen is cut into horizontal lanes of one height. A comment on screen is a box of its
 * text's width moving at constant speed: a scrolling one enters at the right edge and has just
 * left at the left edge when its time is up; a top or bottom one stands still, centred. Two
 * boxes in the same lane conflict when, at some moment both are shown, their spans overlap. As
 * every edge moves linearly in time, that is two linear inequalities in t, solved exactly: no
 * sampling, no rule of thumb per pair of modes.
 *
 * Scrolling and top comments take the first free lane from the top, bottom ones from the
 * bottom. The stated rule when no lane is free: the comment waits in steps of `delayStepMs`, at
 * most `maxDelayMs`, for the first moment a lane is free, and is dropped when none frees up.
 */

export type LaneMode = 'scroll' | 'top' | 'bottom';

export interface LaneScreen {
  width: number;
  height: number;
  /** Height of a lane: the text's line with its outline. */
  laneHeight: number;
  /** How long a scrolling comment takes to cross the screen, entering to gone. */
  scrollMs: number;
  /** How long a top or bottom comment stands. */
  stillMs: number;
  /** The longest a comment may wait for a free lane (0: never waits). */
  maxDelayMs?: number;
  /** Steps of that wait. */
  delayStepMs?: number;
}

/** A comment to place: when it is due, its mode and the width of its text in pixels. */
export interface LaneItem {
  atMs: number;
  mode: LaneMode;
  width: number;
}

/**
 * Where and when a comment is drawn. Its box's left edge is at `x` at `startMs` and moves left by
 * `speed` pixels per ms until `endMs`; its top is at `y`.
 */
export interface Placement {
  lane: number;
  startMs: number;
  endMs: number;
  /** The left edge at startMs. */
  x: number;
  /** The top edge. */
  y: number;
  /** Pixels per ms to the left (0 for top and bottom). */
  speed: number;
  width: number;
  mode: LaneMode;
}

/** Where a box's left edge is at `t`. */
export function leftAt(p: Placement, t: number): number {
  return p.x - p.speed * (t - p.startMs);
}

// Shared edges (one box's right edge on the other's left) do not count; floating point rounding does not either.
const EPSILON = 1e-6;

/**
 * Narrows the window (lo, hi) to where c + d*t > 0; returns the new window, empty when lo >= hi.
 * Written without arrays: it runs for every pair of boxes a comment is tried against.
 */
function narrow(lo: number, hi: number, c: number, d: number, upper: boolean): number {
  if (Math.abs(d) < 1e-12) return c > EPSILON ? (upper ? hi : lo) : upper ? -Infinity : Infinity;
  const root = -c / d;
  if (upper) return d < 0 ? Math.min(hi, root) : hi;
  return d > 0 ? Math.max(lo, root) : lo;
}

/** Whether two boxes in the same lane are ever drawn over each other. */
export function collide(a: Placement, b: Placement): boolean {
  let lo = Math.max(a.startMs, b.startMs);
  let hi = Math.min(a.endMs, b.endMs);
  if (hi - lo <= EPSILON) return false;
  // left(t) = p - v*t with p = x + v*start. Overlap: leftA < leftB + wB and leftB < leftA + wA.
  const pa = a.x + a.speed * a.startMs;
  const pb = b.x + b.speed * b.startMs;
  const c1 = pb + b.width - pa;
  const d1 = a.speed - b.speed;
  const c2 = pa + a.width - pb;
  const d2 = -d1;
  lo = Math.max(narrow(lo, hi, c1, d1, false), narrow(lo, hi, c2, d2, false));
  hi = Math.min(narrow(lo, hi, c1, d1, true), narrow(lo, hi, c2, d2, true));
  return hi - lo > EPSILON;
}

/**
 * Places comments given in time order, one at a time (a long live is laid out as it is read).
 * `place` answers null for a comment dropped because no lane freed up in time.
 */
export class LaneAllocator {
  readonly lanes: number;
  private readonly shown: Placement[][];
  private readonly maxDelayMs: number;
  private readonly delayStepMs: number;
  private lastAt = -Infinity;

  constructor(private readonly screen: LaneScreen) {
    if (!(screen.width > 0 && screen.height > 0 && screen.laneHeight > 0 && screen.scrollMs > 0 && screen.stillMs > 0)) {
      throw new RangeError('the screen, lane height and durations must be positive');
    }
    this.lanes = Math.max(1, Math.floor(screen.height / screen.laneHeight));
    this.shown = Array.from({ length: this.lanes }, () => []);
    this.maxDelayMs = Math.max(0, screen.maxDelayMs ?? 0);
    this.delayStepMs = Math.max(1, screen.delayStepMs ?? 100);
  }

  place(item: LaneItem): Placement | null {
    if (item.atMs < this.lastAt) throw new RangeError(`comments must come in time order (${item.atMs} after ${this.lastAt})`);
    this.lastAt = item.atMs;
    // What has ended before this comment's time is in nobody's way any more: later comments come later.
    for (const lane of this.shown) {
      let gone = 0;
      while (gone < lane.length && (lane[gone] as Placement).endMs <= item.atMs) gone++;
      if (gone > 0) lane.splice(0, gone);
    }
    const { width: screenWidth, scrollMs, stillMs, laneHeight } = this.screen;
    const scroll = item.mode === 'scroll';
    const speed = scroll ? (screenWidth + item.width) / scrollMs : 0;
    // A lane's earliest possible start, from the pairs that have one in closed form: a scrolling
    // comment behind a scrolling one must wait until the other's tail has entered and must not
    // catch it before it has left (its gap shrinks or grows linearly, so both ends decide); a
    // standing one must wait for the one standing there to go. Mixed pairs are left to collide().
    const steps = Math.floor(this.maxDelayMs / this.delayStepMs);
    const firstStep: number[] = [];
    let earliest = Infinity;
    for (const held of this.shown) {
      let bound = item.atMs;
      for (const p of held) {
        if (scroll && p.mode === 'scroll') bound = Math.max(bound, p.startMs + p.width / p.speed, p.endMs - screenWidth / speed);
        else if (!scroll && p.mode !== 'scroll') bound = Math.max(bound, p.endMs);
      }
      const step = Math.max(0, Math.ceil((bound - item.atMs) / this.delayStepMs - 1e-9));
      firstStep.push(step);
      earliest = Math.min(earliest, step);
    }
    for (let step = earliest; step <= steps; step++) {
      const start = item.atMs + step * this.delayStepMs;
      const candidate: Placement = scroll
        ? { lane: 0, startMs: start, endMs: start + scrollMs, x: screenWidth, y: 0, speed, width: item.width, mode: item.mode }
        : { lane: 0, startMs: start, endMs: start + stillMs, x: (screenWidth - item.width) / 2, y: 0, speed: 0, width: item.width, mode: item.mode };
      for (let i = 0; i < this.lanes; i++) {
        const lane = item.mode === 'bottom' ? this.lanes - 1 - i : i;
        if ((firstStep[lane] as number) > step) continue;
        const held = this.shown[lane] as Placement[];
        if (held.some((p) => collide(p, candidate))) continue;
        candidate.lane = lane;
        candidate.y = lane * laneHeight;
        // Kept in order of end so the pruning above stops at the first one still shown.
        let at = held.length;
        while (at > 0 && (held[at - 1] as Placement).endMs > candidate.endMs) at--;
        held.splice(at, 0, candidate);
        return candidate;
      }
    }
    return null;
  }
}

/** Lays out a whole list (in time order): a placement or null (dropped) for each. */
export function layoutLanes(screen: LaneScreen, items: readonly LaneItem[]): (Placement | null)[] {
  const allocator = new LaneAllocator(screen);
  return items.map((item) => allocator.place(item));
}

/**
 * The width a line of text takes at `fontSize`, estimated on the generous side (a real font is
 * narrower for most text): the boxes must hold the drawn glyphs, or neighbours could touch.
 * CJK, kana, Hangul, full-width forms and emoji take a full em; capitals and wide Latin letters
 * 0.8 em; other characters 0.6 em; joiners, variation selectors and combining marks nothing.
 */
export function textWidth(text: string, fontSize: number): number {
  let ems = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1f3fb && cp <= 0x1f3ff) || (cp >= 0xe0100 && cp <= 0xe01ef)) continue;
    if (isWide(cp)) ems += 1;
    else if ((cp >= 0x41 && cp <= 0x5a) || cp === 0x6d || cp === 0x77 || cp === 0x40 || cp === 0x25) ems += 0.8;
    else ems += 0.6;
  }
  return Math.ceil(ems * fontSize);
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x2600 && cp <= 0x27bf) ||
    (cp >= 0x1f000 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}
