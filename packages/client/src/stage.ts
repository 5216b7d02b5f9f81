/**
 * The danmaku renderer, shared by our pages (viewer, replay, OBS overlay) and the drop-in
 * `<danmaku-layer>`: scrolling comments fly right-to-left; `top` and `bottom` comments stand
 * still, centred, for a few seconds. Browser only (DOM and Web Animations).
 *
 * Lanes. The stage is cut into rows one line high: scrolling and top comments take rows counted
 * from the top, bottom comments rows counted from the bottom (top and bottom each within their
 * half, so the scrolling ones stay readable). An item goes to the first row where it meets
 * nothing already drawn there, neither now nor while both are on screen:
 * - two scrolling items never catch up (every one moves at the same px/s), so they only must not
 *   touch now, a gap apart;
 * - a scrolling item and a standing one must not meet before the standing one goes: the moving
 *   one is already past it, or too far right to reach it in the time it has left;
 * - two standing items in one row always meet (both are centred), so a row holds one at a time.
 * Everything is read from the elements' drawn boxes and animations at that moment, so pausing,
 * rate changes and resizing need no bookkeeping.
 *
 * No free row. Nothing is ever drawn over another item: an item that finds no row waits in a
 * queue and takes the first row that frees, in order per mode. Live: the queue holds `maxQueue`
 * items; past that the oldest ordinary comment is dropped (gifts, notices and your own comments
 * are kept). Replay (`timed`): an item waiting keeps its place in time (it starts as far along as
 * it would be by then), and is dropped once its time on screen has passed.
 */
import type { Message } from '@danmaku/protocol';

export type DanmakuMode = 'scroll' | 'top' | 'bottom';

export interface StageOptions {
  speedPxPerSec?: number;
  /** Row height; default: the height of a drawn line (about 1.4x the font size) plus a little air. */
  laneHeightPx?: number;
  gapPx?: number;
  maxQueue?: number;
  /** Most rows used by scrolling items; default: as many as fit. */
  maxLanes?: number;
  /** Most items on screen at once; more wait in the queue. */
  maxOnScreen?: number;
  fontSizePx?: number;
  opacity?: number;
  /** How long a top or bottom comment stays. */
  fixedMs?: number;
  /**
   * Replay: an item waiting for a lane keeps its place in time (it starts as far along as it
   * would be), so the screen always shows the video's moment. Live: it starts at the edge.
   */
  timed?: boolean;
}

interface Item {
  id: string;
  kind: 'comment' | 'gift' | 'system';
  text: string;
  mine: boolean;
  color?: string;
  mode: DanmakuMode;
  /** Time already spent on screen (replay after a seek). */
  elapsedMs: number;
  /** When it was queued, on the stage's clock: time waiting for a lane counts as flight too. */
  queuedAt: number;
}

/** An item on screen as the allocator sees it: its box relative to the stage, now. */
interface Drawn {
  mode: DanmakuMode;
  left: number;
  right: number;
  top: number;
  bottom: number;
  /** Standing items: stage time (ms) left before it goes. */
  remainingMs: number;
}

/** The optional style fields of a comment (protocol: `color` #RRGGBB, `mode`). */
interface Styled {
  color?: unknown;
  mode?: unknown;
}

const COLOR = /^#[0-9A-Fa-f]{6}$/;
/** Space kept between the stage's edge and the first row. */
const EDGE_PX = 4;

export function styleOf(m: Message): { color?: string; mode: DanmakuMode } {
  const { color, mode } = m as Message & Styled;
  return {
    ...(typeof color === 'string' && COLOR.test(color) ? { color } : {}),
    mode: mode === 'top' || mode === 'bottom' ? mode : 'scroll',
  };
}

/**
 * The stage's look: the pages serve it as /assets/danmaku.css, the drop-in layer puts it in its
 * shadow root. One definition, so both draw alike.
 */
export const STAGE_CSS = `/* Danmaku on a stage: shared by the viewer, replay, the OBS overlay and <danmaku-layer>. */
.stage { position: absolute; inset: 0; pointer-events: none; overflow: hidden; }
.danmaku {
  position: absolute; left: 0; top: 0; white-space: nowrap; will-change: transform;
  font-size: var(--danmaku-size, 22px); line-height: 1.36; font-weight: 600; color: #fff;
  text-shadow: 0 0 2px #000, 1px 1px 2px #000;
}
.danmaku.mine { border: 2px solid #7fd1ff; border-radius: 6px; padding: 0 6px; line-height: calc(1.36em - 4px); }
.danmaku.gift {
  color: #3b2600; text-shadow: none; padding: 0 10px; border-radius: 15px;
  background: linear-gradient(90deg, #ffd86b, #ffb13b); box-shadow: 0 0 8px rgba(255, 190, 60, 0.8);
}
.danmaku.system { color: #9cf5c8; }
.danmaku.measuring { visibility: hidden; }
`;

export class Stage {
  private readonly speed: number;
  private readonly gap: number;
  private readonly maxQueue: number;
  private readonly maxLanes: number;
  private readonly maxOnScreen: number;
  private readonly fixedMs: number;
  private readonly timed: boolean;
  private laneHeight: number | undefined;
  private readonly queue: Item[] = [];
  private readonly flying = new Map<string, { el: HTMLElement; animation: Animation; mode: DanmakuMode }>();
  private paused = false;
  private rate = 1;
  /** The stage's own clock (ms): it stands while paused and runs at the playback rate. */
  private clockBase = 0;
  private clockAt = performance.now();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly root: HTMLElement,
    options: StageOptions = {},
  ) {
    this.speed = options.speedPxPerSec ?? 140;
    this.laneHeight = options.laneHeightPx;
    this.gap = options.gapPx ?? 24;
    this.maxQueue = options.maxQueue ?? 150;
    this.maxLanes = options.maxLanes ?? Number.POSITIVE_INFINITY;
    this.maxOnScreen = options.maxOnScreen ?? Number.POSITIVE_INFINITY;
    this.fixedMs = options.fixedMs ?? 4000;
    this.timed = options.timed ?? false;
    if (options.fontSizePx !== undefined) root.style.setProperty('--danmaku-size', `${options.fontSizePx}px`);
    if (options.opacity !== undefined) root.style.opacity = String(options.opacity);
  }

  /** How long a scrolling item of this width is on screen. */
  flightMs(widthPx = 0): number {
    return ((this.root.getBoundingClientRect().width + widthPx) / this.speed) * 1000;
  }

  /** Messages to show: comments, gifts and system notices; the rest are not for the screen. */
  show(messages: Message[], myId?: string, elapsedMs: (m: Message) => number = () => 0): void {
    const now = this.clock();
    for (const m of messages) {
      const item = toItem(m, myId, elapsedMs(m), now);
      if (item) this.queue.push(item);
    }
    while (this.queue.length > this.maxQueue) {
      const victim = this.queue.findIndex((i) => i.kind === 'comment' && !i.mine);
      this.queue.splice(victim >= 0 ? victim : 0, 1);
    }
    this.drain();
    this.timer ??= setInterval(() => this.drain(), 100);
  }

  remove(ids: string[]): void {
    for (const id of ids) {
      this.flying.get(id)?.el.remove();
      this.flying.delete(id);
      const queued = this.queue.findIndex((i) => i.id === id);
      if (queued >= 0) this.queue.splice(queued, 1);
    }
  }

  clear(): void {
    this.queue.length = 0;
    for (const { el } of this.flying.values()) el.remove();
    this.flying.clear();
  }

  private clock(): number {
    return this.paused ? this.clockBase : this.clockBase + (performance.now() - this.clockAt) * this.rate;
  }

  pause(): void {
    if (this.paused) return;
    this.clockBase = this.clock();
    this.paused = true;
    for (const { animation } of this.flying.values()) animation.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.clockAt = performance.now();
    this.paused = false;
    for (const { animation } of this.flying.values()) animation.play();
  }

  /** Follows the video's playback rate: at 2x the comments fly (and stand) half as long. */
  setRate(rate: number): void {
    this.clockBase = this.clock();
    this.clockAt = performance.now();
    this.rate = rate > 0 ? rate : 1;
    for (const { animation } of this.flying.values()) animation.playbackRate = this.rate;
  }

  get queued(): number {
    return this.queue.length;
  }

  get onScreen(): number {
    return this.flying.size;
  }

  private drain(): void {
    // Timed (replay): a paused screen still shows the moment it is paused on, items included.
    if (this.paused && !this.timed) return;
    const box = this.root.getBoundingClientRect();
    const now = this.clock();
    const drawn = this.drawn(box);
    // A mode with no free lane stays blocked for this pass; the other modes may still go.
    const blocked = new Set<DanmakuMode>();
    for (let i = 0; i < this.queue.length && this.flying.size < this.maxOnScreen && blocked.size < 3; ) {
      const item = this.queue[i] as Item;
      const elapsed = this.timed ? item.elapsedMs + (now - item.queuedAt) : item.elapsedMs;
      if (item.mode === 'scroll' ? false : elapsed >= this.fixedMs) {
        this.queue.splice(i, 1);
        continue;
      }
      if (blocked.has(item.mode)) {
        i++;
        continue;
      }
      const el = this.element(item);
      const placed = this.place(item.mode, el, box, drawn, elapsed);
      if (placed === 'gone') {
        el.remove();
        this.queue.splice(i, 1);
      } else if (placed === null) {
        el.remove();
        // Timed scrolling items start at different places, so one that does not fit says
        // nothing of the next.
        if (!this.timed || item.mode !== 'scroll') blocked.add(item.mode);
        i++;
      } else {
        this.queue.splice(i, 1);
        drawn.push(placed);
        if (item.mode === 'scroll') this.launch(item.id, el, box.width, elapsed);
        else this.pin(item.id, el, elapsed);
      }
    }
    if (this.queue.length === 0 && this.flying.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** What is on screen now, relative to the stage's box. */
  private drawn(box: DOMRect): Drawn[] {
    const out: Drawn[] = [];
    for (const { el, animation, mode } of this.flying.values()) {
      if (!el.isConnected || animation.playState === 'finished') continue;
      const r = el.getBoundingClientRect();
      const remainingMs = mode === 'scroll' ? 0 : this.fixedMs - Number(animation.currentTime ?? 0);
      out.push({ mode, left: r.left - box.left, right: r.right - box.left, top: r.top - box.top, bottom: r.bottom - box.top, remainingMs });
    }
    return out;
  }

  /** The height of one row: a drawn line of the stage's font, measured once. */
  private rowHeight(probe: HTMLElement): number {
    this.laneHeight ??= Math.ceil(probe.offsetHeight) + 4;
    return this.laneHeight;
  }

  /**
   * Finds a row for `el` (already in the stage, hidden, so it can be measured) and puts it there;
   * null when none is free now, 'gone' when a timed item's time on screen is over.
   */
  private place(mode: DanmakuMode, el: HTMLElement, box: DOMRect, drawn: Drawn[], elapsedMs: number): Drawn | null | 'gone' {
    const width = el.offsetWidth;
    const rowHeight = this.rowHeight(el);
    const rows = Math.max(1, Math.floor((box.height - 2 * EDGE_PX) / rowHeight));
    let left: number;
    let candidates: number[];
    if (mode === 'scroll') {
      // Where it starts: the right edge, or as far in as it has flown already (replay).
      left = box.width - (this.speed * elapsedMs) / 1000;
      if (left + width <= 0) return 'gone';
      candidates = range(Math.min(rows, this.maxLanes));
    } else {
      left = (box.width - width) / 2;
      candidates = range(Math.max(1, Math.floor(rows / 2)));
    }
    const remainingMs = mode === 'scroll' ? 0 : this.fixedMs - elapsedMs;
    for (const row of candidates) {
      const top = mode === 'bottom' ? box.height - EDGE_PX - (row + 1) * rowHeight : EDGE_PX + row * rowHeight;
      const mine: Drawn = { mode, left, right: left + width, top, bottom: top + el.offsetHeight, remainingMs };
      if (drawn.some((other) => this.meets(mine, other))) continue;
      el.style.top = `${top}px`;
      return mine;
    }
    return null;
  }

  /** Would these two touch while both are on screen (rows that overlap at all, then by mode)? */
  private meets(a: Drawn, b: Drawn): boolean {
    if (a.bottom <= b.top || b.bottom <= a.top) return false;
    const gap = this.gap;
    const apart = (x: Drawn, y: Drawn) => x.right + gap <= y.left || y.right + gap <= x.left;
    if (a.mode === 'scroll' && b.mode === 'scroll') return !apart(a, b);
    if (a.mode !== 'scroll' && b.mode !== 'scroll') return !apart(a, b);
    const [moving, standing] = a.mode === 'scroll' ? [a, b] : [b, a];
    // Already past it (moving left, it only gets further), or it cannot reach it in time.
    if (moving.right + gap <= standing.left) return false;
    const reach = (this.speed * Math.max(0, standing.remainingMs)) / 1000;
    return moving.left - gap - reach < standing.right;
  }

  private element(item: Item): HTMLElement {
    const el = document.createElement('div');
    el.className = `danmaku measuring ${item.kind}${item.mine ? ' mine' : ''}${item.mode === 'scroll' ? '' : ' fixed'}`;
    el.dataset.id = item.id;
    el.dataset.mode = item.mode;
    // Text, never HTML: content is whatever a viewer typed (API.md: plain text).
    el.textContent = item.text;
    // CSSOM, not a style attribute: the pages' CSP allows no inline styles.
    if (item.color) el.style.color = item.color;
    this.root.append(el);
    return el;
  }

  private launch(id: string, el: HTMLElement, width: number, elapsedMs: number): void {
    const duration = ((width + el.offsetWidth) / this.speed) * 1000;
    if (elapsedMs >= duration) {
      el.remove();
      return;
    }
    el.classList.remove('measuring');
    const animation = el.animate([{ transform: `translateX(${width}px)` }, { transform: `translateX(${-el.offsetWidth}px)` }], { duration, easing: 'linear', fill: 'both' });
    this.track(id, el, animation, elapsedMs, 'scroll');
  }

  private pin(id: string, el: HTMLElement, elapsedMs: number): void {
    el.style.left = '50%';
    el.style.transform = 'translateX(-50%)';
    el.classList.remove('measuring');
    // The animation is the timer (it pauses and follows the rate like the rest) and what shows
    // the item: hidden outside it, so a busy page that runs its finish handler late never keeps
    // it on screen past its time, over an item that was let into its row.
    el.style.visibility = 'hidden';
    const animation = el.animate([{ visibility: 'visible' }, { visibility: 'visible' }], { duration: this.fixedMs });
    this.track(id, el, animation, elapsedMs, el.dataset.mode === 'bottom' ? 'bottom' : 'top');
  }

  private track(id: string, el: HTMLElement, animation: Animation, elapsedMs: number, mode: DanmakuMode): void {
    animation.currentTime = elapsedMs;
    animation.playbackRate = this.rate;
    if (this.paused) animation.pause();
    this.flying.set(id, { el, animation, mode });
    animation.onfinish = () => {
      el.remove();
      if (this.flying.get(id)?.el === el) this.flying.delete(id);
    };
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function toItem(m: Message, myId: string | undefined, elapsedMs: number, queuedAt: number): Item | null {
  const mine = myId !== undefined && m.user.id === myId;
  const base = { id: m.id, mine, elapsedMs, queuedAt, mode: 'scroll' as DanmakuMode };
  if (m.type === 'comment' && m.content) return { ...base, kind: 'comment', text: m.content, ...styleOf(m) };
  if (m.type === 'gift' && m.gift) return { ...base, kind: 'gift', text: `${m.user.name} sent ${giftLabel(m.gift.giftId)} × ${m.gift.count}` };
  if (m.type === 'system' && m.content) return { ...base, kind: 'system', text: `Notice: ${m.content}`, mine: false };
  return null;
}

export const GIFTS: Record<string, string> = { rose: 'a rose 🌹', heart: 'a heart 💖', rocket: 'a rocket 🚀' };

export function giftLabel(giftId: string): string {
  return GIFTS[giftId] ?? giftId;
}
