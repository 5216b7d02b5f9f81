/**
 * Danmaku over the video area: scrolling comments fly right-to-left in lanes without overlaps;
 * `top` and `bottom` comments stand still, centred, in lanes of their own for a few seconds.
 *
 * Every scrolling item moves at the same speed (px/s), so an item can never catch up with the
 * one ahead in its lane: a lane takes a new item once the tail of its last item is a gap inside
 * the right edge. That is read from the element's actual position, so pausing (replay) and
 * resizing need no bookkeeping. Items that find no free lane wait in a short queue; when it
 * overflows, the oldest ordinary comments are dropped first (gifts and your own comments are
 * kept).
 *
 * Replay starts an item part-way (`elapsedMs`): after a seek, a comment sent 2 s before the new
 * position is drawn where it would be after 2 s of flight, so the screen shows that moment.
 */
import type { Message } from '@danmaku/client';

export type DanmakuMode = 'scroll' | 'top' | 'bottom';

export interface StageOptions {
  speedPxPerSec?: number;
  laneHeightPx?: number;
  gapPx?: number;
  maxQueue?: number;
  /** Most lanes used (scrolling); default: as many as fit. */
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

/** The optional style fields of a comment (protocol: `color` #RRGGBB, `mode`). */
interface Styled {
  color?: unknown;
  mode?: unknown;
}

const COLOR = /^#[0-9A-Fa-f]{6}$/;

export function styleOf(m: Message): { color?: string; mode: DanmakuMode } {
  const { color, mode } = m as Message & Styled;
  return {
    ...(typeof color === 'string' && COLOR.test(color) ? { color } : {}),
    mode: mode === 'top' || mode === 'bottom' ? mode : 'scroll',
  };
}

export class Stage {
  private readonly speed: number;
  private readonly laneHeight: number;
  private readonly gap: number;
  private readonly maxQueue: number;
  private readonly maxLanes: number;
  private readonly maxOnScreen: number;
  private readonly fixedMs: number;
  private readonly timed: boolean;
  private readonly lanes: (HTMLElement | null)[] = [];
  private readonly fixedLanes: Record<'top' | 'bottom', (HTMLElement | null)[]> = { top: [], bottom: [] };
  private readonly queue: Item[] = [];
  private readonly flying = new Map<string, { el: HTMLElement; animation: Animation }>();
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
    const fontSize = options.fontSizePx ?? 22;
    this.laneHeight = options.laneHeightPx ?? Math.round(fontSize * 1.55);
    this.gap = options.gapPx ?? 24;
    this.maxQueue = options.maxQueue ?? 150;
    this.maxLanes = options.maxLanes ?? Number.POSITIVE_INFINITY;
    this.maxOnScreen = options.maxOnScreen ?? Number.POSITIVE_INFINITY;
    this.fixedMs = options.fixedMs ?? 4000;
    this.timed = options.timed ?? false;
    if (options.fontSizePx !== undefined) root.style.setProperty('--danmaku-size', `${fontSize}px`);
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
    this.lanes.fill(null);
    this.fixedLanes.top.fill(null);
    this.fixedLanes.bottom.fill(null);
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
    const laneCount = Math.max(1, Math.min(this.maxLanes, Math.floor((box.height - 8) / this.laneHeight)));
    const now = this.clock();
    // A mode with no free lane stays blocked for this pass; the other modes may still go.
    const blocked = new Set<DanmakuMode>();
    for (let i = 0; i < this.queue.length && this.flying.size < this.maxOnScreen && blocked.size < 3; ) {
      const item = this.queue[i] as Item;
      const elapsed = this.timed ? item.elapsedMs + (now - item.queuedAt) : item.elapsedMs;
      // Where it starts: the right edge, or as far in as it has flown already (replay).
      const startX = box.right - (this.speed * elapsed) / 1000;
      const lane = blocked.has(item.mode) ? -1 : item.mode === 'scroll' ? this.freeLane(startX, laneCount) : this.freeFixedLane(item.mode, laneCount);
      if (lane < 0) {
        // Timed items start at different places, so one that does not fit says nothing of the
        // next; one whose head has left the screen will never fit.
        if (this.timed && item.mode === 'scroll' && startX < box.left) this.queue.splice(i, 1);
        else {
          if (!this.timed || item.mode !== 'scroll') blocked.add(item.mode);
          i++;
        }
        continue;
      }
      this.queue.splice(i, 1);
      if (item.mode === 'scroll') this.launch(item, lane, box.width, elapsed);
      else this.pin(item, item.mode, lane, elapsed);
    }
    if (this.queue.length === 0 && this.flying.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** A lane whose last item's tail is a gap left of `startX`, where the new item starts. */
  private freeLane(startX: number, laneCount: number): number {
    for (let lane = 0; lane < laneCount; lane++) {
      const last = this.lanes[lane];
      if (!last || !last.isConnected || last.getBoundingClientRect().right <= startX - this.gap) return lane;
    }
    return -1;
  }

  private freeFixedLane(mode: 'top' | 'bottom', laneCount: number): number {
    const lanes = this.fixedLanes[mode];
    // Fixed comments use at most half the height, so the scrolling ones stay readable.
    for (let lane = 0; lane < Math.max(1, Math.floor(laneCount / 2)); lane++) {
      const last = lanes[lane];
      if (!last || !last.isConnected) return lane;
    }
    return -1;
  }

  private element(item: Item): HTMLElement {
    const el = document.createElement('div');
    el.className = `danmaku ${item.kind}${item.mine ? ' mine' : ''}${item.mode === 'scroll' ? '' : ' fixed'}`;
    el.dataset.id = item.id;
    el.dataset.mode = item.mode;
    // Text, never HTML: content is whatever a viewer typed (API.md: plain text).
    el.textContent = item.text;
    // CSSOM, not a style attribute: the pages' CSP allows no inline styles.
    if (item.color) el.style.color = item.color;
    return el;
  }

  private launch(item: Item, lane: number, width: number, elapsedMs: number): void {
    const el = this.element(item);
    el.style.top = `${4 + lane * this.laneHeight}px`;
    el.style.transform = `translateX(${width}px)`;
    this.root.append(el);
    const duration = ((width + el.offsetWidth) / this.speed) * 1000;
    if (elapsedMs >= duration) {
      el.remove();
      return;
    }
    const animation = el.animate([{ transform: `translateX(${width}px)` }, { transform: `translateX(${-el.offsetWidth}px)` }], { duration, easing: 'linear' });
    this.lanes[lane] = el;
    this.track(item.id, el, animation, elapsedMs);
  }

  private pin(item: Item, mode: 'top' | 'bottom', lane: number, elapsedMs: number): void {
    if (elapsedMs >= this.fixedMs) return;
    const el = this.element(item);
    el.style.left = '50%';
    el.style.transform = 'translateX(-50%)';
    if (mode === 'top') el.style.top = `${4 + lane * this.laneHeight}px`;
    else el.style.bottom = `${4 + lane * this.laneHeight}px`;
    this.root.append(el);
    // An animation that changes nothing is the timer: it pauses and follows the rate like the rest.
    const animation = el.animate([{ opacity: 1 }, { opacity: 1 }], { duration: this.fixedMs });
    this.fixedLanes[mode][lane] = el;
    this.track(item.id, el, animation, elapsedMs);
  }

  private track(id: string, el: HTMLElement, animation: Animation, elapsedMs: number): void {
    animation.currentTime = elapsedMs;
    animation.playbackRate = this.rate;
    if (this.paused) animation.pause();
    this.flying.set(id, { el, animation });
    animation.onfinish = () => {
      el.remove();
      if (this.flying.get(id)?.el === el) this.flying.delete(id);
    };
  }
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
