/**
 * `<danmaku-layer>`: danmaku over any `<video>` on any site, drawn by the same renderer and lane
 * rules as our pages. Browser only; importing this module defines the element.
 *
 *   <video id="v" src="..."></video>
 *   <danmaku-layer server="https://danmaku.example" room="ROOM" for="v"></danmaku-layer>
 *
 * Attributes: `server` (the front's origin), `room`, `for` (the video's id); `live="LIVE_ID"`
 * replays that live timed by the video's clock (seek, pause, rate, buffering) instead of the
 * room's live comments; `speed` (px/s, 140), `font-size` (px, 22), `opacity` (0..1, 1),
 * `types` (comma-separated, default `comment,gift,system`), `max` (most on screen, 100);
 * `send` shows a send box (live only), posting with `token` (or the value of `send` itself).
 *
 * The layer sits over the video's box wherever the video is (it follows resizes, scrolling and a
 * container going fullscreen; a `<video>` put fullscreen by itself hides every page element, so
 * players fullscreen a container instead). It draws in its shadow root, so the site's CSS and
 * the layer's never meet; it never catches clicks except on its send box. The front's CORS
 * setting (DANMAKU_CORS_ORIGINS) must let the site's origin call the API.
 */
import type { MessageType } from '@danmaku/protocol';
import type { DanmakuClient } from './client.js';
import { createClient } from './index.js';
import { ReplayFeed } from './replay-feed.js';
import { Stage, STAGE_CSS } from './stage.js';

const LAYER_CSS = `${STAGE_CSS}
:host { position: absolute; display: block; pointer-events: none; z-index: 2147483000; overflow: hidden; }
:host([hidden]) { display: none; }
.send { position: absolute; left: 8px; bottom: 8px; display: flex; gap: 4px; pointer-events: auto; opacity: 0.85; }
.send input { width: 16em; font: inherit; padding: 3px 6px; border-radius: 4px; border: 1px solid #888; }
.send button { font: inherit; padding: 3px 10px; border-radius: 4px; }
`;

const TICK_MS = 100;
/** A layout change the observers do not see (a sibling growing): checked this often. */
const FOLLOW_MS = 500;

function numberAttr(el: HTMLElement, name: string, min: number, max: number): number | undefined {
  const text = el.getAttribute(name);
  if (text === null || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : undefined;
}

export class DanmakuLayer extends HTMLElement {
  static readonly observedAttributes = ['server', 'room', 'for', 'live', 'speed', 'font-size', 'opacity', 'types', 'max', 'send', 'token'];

  private readonly root: ShadowRoot;
  private stageEl: HTMLElement;
  private stage: Stage | null = null;
  private video: HTMLVideoElement | null = null;
  private client: DanmakuClient | null = null;
  private feed: ReplayFeed | null = null;
  private timers: ReturnType<typeof setInterval>[] = [];
  private resize: ResizeObserver | null = null;
  private readonly cleanups: (() => void)[] = [];
  /** Where the layer was before a fullscreen container took it in. */
  private home: { parent: Node; next: Node | null } | null = null;
  private restartQueued = false;

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.stageEl = document.createElement('div');
  }

  connectedCallback(): void {
    // Moving into a fullscreen container and back disconnects and reconnects: keep running.
    if (this.stage) return;
    this.restart();
  }

  disconnectedCallback(): void {
    // Deferred: a move (fullscreen) reconnects in the same task.
    queueMicrotask(() => {
      if (!this.isConnected) this.teardown();
    });
  }

  attributeChangedCallback(): void {
    if (!this.stage || this.restartQueued) return;
    // Several attributes set in a row restart once.
    this.restartQueued = true;
    queueMicrotask(() => {
      this.restartQueued = false;
      if (this.isConnected) this.restart();
    });
  }

  /** The renderer in use (for tests and for sites that want its counts). */
  get renderer(): Stage | null {
    return this.stage;
  }

  private restart(): void {
    this.teardown();
    const server = (this.getAttribute('server') ?? location.origin).replace(/\/$/, '');
    const videoId = this.getAttribute('for');
    this.video = videoId ? (document.getElementById(videoId) as HTMLVideoElement | null) : null;
    const liveId = this.getAttribute('live');
    const room = this.getAttribute('room');
    const types = (this.getAttribute('types') ?? 'comment,gift,system')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean) as MessageType[];
    const max = Math.round(numberAttr(this, 'max', 1, 1000) ?? 100);

    const style = document.createElement('style');
    style.textContent = LAYER_CSS;
    this.stageEl = document.createElement('div');
    this.stageEl.className = 'stage';
    this.stageEl.part.add('stage');
    this.root.replaceChildren(style, this.stageEl);
    const fontSizePx = numberAttr(this, 'font-size', 8, 160);
    const opacity = numberAttr(this, 'opacity', 0, 1);
    this.stage = new Stage(this.stageEl, {
      speedPxPerSec: numberAttr(this, 'speed', 20, 3000) ?? 140,
      ...(fontSizePx !== undefined ? { fontSizePx } : {}),
      ...(opacity !== undefined ? { opacity } : {}),
      maxOnScreen: max,
      maxQueue: max * 2,
      timed: liveId !== null,
    });
    this.follow();
    if (liveId) this.replay(server, liveId, types);
    else if (room) this.live(server, room, types);
  }

  private teardown(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.resize?.disconnect();
    this.resize = null;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    void this.client?.stop();
    this.client = null;
    this.feed = null;
    this.stage?.clear();
    this.stage = null;
  }

  private listen(target: EventTarget, type: string, handler: () => void, capture = false): void {
    target.addEventListener(type, handler, capture);
    this.cleanups.push(() => target.removeEventListener(type, handler, capture));
  }

  /** Keeps the layer exactly over the video's box. */
  private follow(): void {
    const place = () => this.place();
    if (this.video) {
      this.resize = new ResizeObserver(place);
      this.resize.observe(this.video);
    }
    this.listen(window, 'resize', place);
    this.listen(document, 'scroll', place, true);
    this.listen(document, 'fullscreenchange', () => this.onFullscreen());
    this.timers.push(setInterval(place, FOLLOW_MS));
    place();
  }

  private onFullscreen(): void {
    const full = document.fullscreenElement;
    if (full && full !== this.video && this.video && full.contains(this.video) && !full.contains(this)) {
      this.home ??= { parent: this.parentNode as Node, next: this.nextSibling };
      full.append(this);
    } else if (!full && this.home) {
      const { parent, next } = this.home;
      this.home = null;
      parent.insertBefore(this, next);
    }
    this.place();
  }

  private place(): void {
    const video = this.video;
    if (!video || !video.isConnected) {
      this.hidden = true;
      return;
    }
    this.hidden = false;
    const box = video.getBoundingClientRect();
    // Relative to the box the layer is positioned in: a positioned ancestor, or the page itself
    // (a static body is the offset parent, yet not what `position: absolute` measures from).
    const parent = this.offsetParent;
    let left = box.left + window.scrollX;
    let top = box.top + window.scrollY;
    if (parent && getComputedStyle(parent).position !== 'static') {
      const p = parent.getBoundingClientRect();
      left = box.left - p.left - parent.clientLeft + parent.scrollLeft;
      top = box.top - p.top - parent.clientTop + parent.scrollTop;
    }
    const set = (name: string, px: number) => {
      const value = `${px}px`;
      if (this.style.getPropertyValue(name) !== value) this.style.setProperty(name, value);
    };
    set('left', left);
    set('top', top);
    set('width', box.width);
    set('height', box.height);
  }

  private live(server: string, room: string, types: MessageType[]): void {
    const sendAttr = this.getAttribute('send');
    const token = this.getAttribute('token') ?? (sendAttr || null);
    const client = createClient({
      baseUrl: server,
      roomId: room,
      types,
      ...(token ? { token } : {}),
      version: 'layer-1',
      onMessages: (messages) => this.stage?.show(messages),
      onDeleted: (ids) => this.stage?.remove(ids),
      onMode: (mode) => {
        this.dataset.mode = mode;
        this.dispatchEvent(new CustomEvent('danmaku-mode', { detail: { mode } }));
      },
    });
    this.client = client;
    void client.start();
    if (sendAttr !== null && token) this.sendBox(client);
  }

  private sendBox(client: DanmakuClient): void {
    const form = document.createElement('form');
    form.className = 'send';
    form.part.add('send');
    const input = document.createElement('input');
    input.maxLength = 200;
    input.placeholder = 'Say something';
    const button = document.createElement('button');
    button.textContent = 'Send';
    form.append(input, button);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const content = input.value.trim();
      if (!content) return;
      client.send({ type: 'comment', content }).then(
        () => {
          input.value = '';
        },
        (err: unknown) => {
          this.dispatchEvent(new CustomEvent('danmaku-error', { detail: { error: err } }));
        },
      );
    });
    this.root.append(form);
  }

  private replay(server: string, liveId: string, types: MessageType[]): void {
    const video = this.video;
    if (!video) return;
    const feed = new ReplayFeed({
      baseUrl: server,
      liveId,
      types,
      onError: (error) => this.dispatchEvent(new CustomEvent('danmaku-error', { detail: { error } })),
    });
    this.feed = feed;
    const stage = this.stage as Stage;
    const head = () => video.currentTime * 1000;
    const tick = () => {
      const due = feed.due(head());
      if (due.length === 0) return;
      const elapsed = new Map(due.map((d) => [d.message.id, d.elapsedMs]));
      stage.show(
        due.map((d) => d.message),
        undefined,
        (m) => elapsed.get(m.id) ?? 0,
      );
    };
    const still = () => video.paused || video.seeking || video.readyState < 3;
    this.listen(video, 'seeking', () => {
      feed.seek(head());
      stage.clear();
      tick();
    });
    this.listen(video, 'seeked', tick);
    this.listen(video, 'playing', () => stage.resume());
    this.listen(video, 'waiting', () => stage.pause());
    this.listen(video, 'pause', () => {
      stage.pause();
      tick();
    });
    this.listen(video, 'ratechange', () => stage.setRate(video.playbackRate));
    feed.seek(head());
    stage.setRate(video.playbackRate);
    if (still()) stage.pause();
    this.timers.push(setInterval(tick, TICK_MS));
    tick();
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('danmaku-layer')) customElements.define('danmaku-layer', DanmakuLayer);

declare global {
  interface HTMLElementTagNameMap {
    'danmaku-layer': DanmakuLayer;
  }
}
