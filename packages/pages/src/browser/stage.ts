/**
 * Danmaku flying right-to-left over the video area, in lanes, without overlaps.
 *
 * Every item moves at the same speed (px/s), so an item can never catch up with the one ahead in
 * its lane: a lane takes a new item once the tail of its last item is a gap inside the right
 * edge. That is read from the element's actual position, so pausing (replay) and resizing need
 * no bookkeeping. Items that find no free lane wait in a short queue; when it overflows, the
 * oldest ordinary comments are dropped first (gifts and your own comments are kept).
 */
import type { Message } from '@danmaku/client';

export interface StageOptions {
  speedPxPerSec?: number;
  laneHeightPx?: number;
  gapPx?: number;
  maxQueue?: number;
}

interface Item {
  id: string;
  kind: 'comment' | 'gift' | 'system';
  text: string;
  mine: boolean;
}

export class Stage {
  private readonly speed: number;
  private readonly laneHeight: number;
  private readonly gap: number;
  private readonly maxQueue: number;
  private readonly lanes: (HTMLElement | null)[] = [];
  private readonly queue: Item[] = [];
  private readonly flying = new Map<string, { el: HTMLElement; animation: Animation }>();
  private paused = false;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly root: HTMLElement,
    options: StageOptions = {},
  ) {
    this.speed = options.speedPxPerSec ?? 140;
    this.laneHeight = options.laneHeightPx ?? 34;
    this.gap = options.gapPx ?? 24;
    this.maxQueue = options.maxQueue ?? 150;
  }

  /** Messages to fly: comments, gifts and system notices; the rest are not for the screen. */
  show(messages: Message[], myId?: string): void {
    for (const m of messages) {
      const item = toItem(m, myId);
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
  }

  pause(): void {
    this.paused = true;
    for (const { animation } of this.flying.values()) animation.pause();
  }

  resume(): void {
    this.paused = false;
    for (const { animation } of this.flying.values()) animation.play();
  }

  get queued(): number {
    return this.queue.length;
  }

  private drain(): void {
    if (this.paused) return;
    const box = this.root.getBoundingClientRect();
    const laneCount = Math.max(1, Math.floor((box.height - 8) / this.laneHeight));
    while (this.queue.length > 0) {
      const lane = this.freeLane(box, laneCount);
      if (lane < 0) break;
      this.launch(this.queue.shift() as Item, lane, box.width);
    }
    if (this.queue.length === 0 && this.flying.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private freeLane(box: DOMRect, laneCount: number): number {
    for (let lane = 0; lane < laneCount; lane++) {
      const last = this.lanes[lane];
      if (!last || !last.isConnected || last.getBoundingClientRect().right <= box.right - this.gap) return lane;
    }
    return -1;
  }

  private launch(item: Item, lane: number, width: number): void {
    const el = document.createElement('div');
    el.className = `danmaku ${item.kind}${item.mine ? ' mine' : ''}`;
    el.dataset.id = item.id;
    // Text, never HTML: content is whatever a viewer typed (API.md: plain text).
    el.textContent = item.text;
    el.style.top = `${4 + lane * this.laneHeight}px`;
    el.style.transform = `translateX(${width}px)`;
    this.root.append(el);
    const distance = width + el.offsetWidth;
    const animation = el.animate([{ transform: `translateX(${width}px)` }, { transform: `translateX(${-el.offsetWidth}px)` }], {
      duration: (distance / this.speed) * 1000,
      easing: 'linear',
    });
    this.lanes[lane] = el;
    this.flying.set(item.id, { el, animation });
    animation.onfinish = () => {
      el.remove();
      this.flying.delete(item.id);
    };
  }
}

function toItem(m: Message, myId: string | undefined): Item | null {
  const mine = myId !== undefined && m.user.id === myId;
  if (m.type === 'comment' && m.content) return { id: m.id, kind: 'comment', text: m.content, mine };
  if (m.type === 'gift' && m.gift) return { id: m.id, kind: 'gift', text: `${m.user.name} sent ${giftLabel(m.gift.giftId)} × ${m.gift.count}`, mine };
  if (m.type === 'system' && m.content) return { id: m.id, kind: 'system', text: `Notice: ${m.content}`, mine: false };
  return null;
}

export const GIFTS: Record<string, string> = { rose: 'a rose 🌹', heart: 'a heart 💖', rocket: 'a rocket 🚀' };

export function giftLabel(giftId: string): string {
  return GIFTS[giftId] ?? giftId;
}
