/**
 * The density curve over a seek bar: how many comments fall in each span of a live
 * (`GET /v1/lives/:liveId/density`), drawn as a filled curve on a canvas as wide as the bar, so
 * the moments that made the room shout stand out; a click there seeks to that moment. The viewer
 * page shows a running live's last minutes the same way (a window that follows its end).
 */
import { api } from './common.js';

export interface Density {
  liveId: string;
  durationMs: number;
  bucketMs: number;
  counts: number[];
}

/** One span per few pixels of a seek bar is as fine as the eye can use. */
const PIXELS_PER_BUCKET = 4;
const MAX_BUCKETS = 2000;

function bucketsFor(widthPx: number): number {
  return Math.max(10, Math.min(MAX_BUCKETS, Math.round(widthPx / PIXELS_PER_BUCKET)));
}

function densityOf(liveId: string, buckets: number, types: string): Promise<Density> {
  return api<Density>(`/v1/lives/${encodeURIComponent(liveId)}/density?buckets=${buckets}&types=${encodeURIComponent(types)}`);
}

export function fetchDensity(liveId: string, widthPx: number, types = 'comment'): Promise<Density> {
  return densityOf(liveId, bucketsFor(widthPx), types);
}

/**
 * The density of a running live fine enough for its last `windowMs` to fill `widthPx`: the
 * endpoint spans the whole live, so a live longer than the window asks for more spans (up to the
 * endpoint's 2000, past which a very long live's window gets coarser spans). `elapsedMs` is the
 * live's age by this clock, only a guess at how many spans that takes.
 */
export function fetchRecentDensity(liveId: string, elapsedMs: number, windowMs: number, widthPx: number, types = 'comment'): Promise<Density> {
  const perWindow = bucketsFor(widthPx);
  const buckets = Math.min(MAX_BUCKETS, Math.max(perWindow, Math.ceil((Math.max(0, elapsedMs) / windowMs) * perWindow)));
  return densityOf(liveId, buckets, types);
}

export interface DensityCurveOptions {
  /** A click on the curve seeks there (the replay); without it the curve is only a picture. */
  onSeek?: (ms: number) => void;
  /** Only the last `windowMs` of the density (the viewer page's running live); the whole of it otherwise. */
  windowMs?: number;
}

/** The busiest span drawn: how many messages, and where its middle lies (ms from the live's start). */
export interface DensityPeak {
  count: number;
  atMs: number;
}

export class DensityCurve {
  private density: Density | null = null;
  /** The seek bar's length (ms): the curve is laid out on it, which may be longer than the live (a recording). */
  private totalMs = 0;
  private drawnPeak: DensityPeak | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly options: DensityCurveOptions = {},
  ) {
    const { onSeek } = options;
    if (onSeek) {
      canvas.addEventListener('click', (event) => {
        if (this.totalMs <= 0) return;
        const box = canvas.getBoundingClientRect();
        const at = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
        onSeek(Math.round(at * this.totalMs));
      });
    }
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** The busiest span of what is drawn; null when nothing is. */
  get peak(): DensityPeak | null {
    return this.drawnPeak;
  }

  show(density: Density | null): void {
    this.density = density;
    this.draw();
  }

  /** The seek bar's length changed (a recording's duration became known, a running live grew). */
  setTotal(totalMs: number): void {
    if (Math.abs(totalMs - this.totalMs) < 1) return;
    this.totalMs = totalMs;
    this.draw();
  }

  private draw(): void {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, width, height);
    const d = this.density;
    const to = Math.max(this.totalMs, d?.durationMs ?? 0);
    const { windowMs } = this.options;
    const from = windowMs === undefined ? 0 : Math.max(0, to - windowMs);
    // The spans that reach into the drawn stretch [from, to].
    const first = d ? Math.min(d.counts.length, Math.floor(from / d.bucketMs)) : 0;
    const shown = d ? d.counts.slice(first) : [];
    const peak = shown.length > 0 ? Math.max(...shown) : 0;
    this.drawnPeak = d && peak > 0 ? { count: peak, atMs: Math.round((first + shown.indexOf(peak) + 0.5) * d.bucketMs) } : null;
    canvas.dataset.peak = String(peak);
    if (this.drawnPeak) canvas.dataset.peakMs = String(this.drawnPeak.atMs);
    else delete canvas.dataset.peakMs;
    // The stretch drawn, for whoever reads the picture back (the page tests do).
    canvas.dataset.fromMs = String(from);
    canvas.dataset.toMs = String(to);
    if (!d || peak === 0 || to <= from) return;
    const x = (ms: number): number => ((ms - from) / (to - from)) * width;
    const y = (count: number): number => height - (count / peak) * (height - 2);
    ctx.beginPath();
    ctx.moveTo(x(first * d.bucketMs), height);
    // Each span's count at its middle, joined by straight lines: a curve, not a bar chart.
    shown.forEach((count, i) => ctx.lineTo(x((first + i + 0.5) * d.bucketMs), y(count)));
    ctx.lineTo(x(d.counts.length * d.bucketMs), height);
    ctx.closePath();
    ctx.fillStyle = 'rgba(255, 102, 153, 0.45)';
    ctx.fill();
    ctx.strokeStyle = 'rgba(255, 102, 153, 0.9)';
    ctx.lineWidth = ratio;
    ctx.stroke();
  }
}
