/**
 * The density curve over a seek bar: how many comments fall in each span of a live
 * (`GET /v1/lives/:liveId/density`), drawn as a filled curve on a canvas as wide as the bar, so
 * the moments that made the room shout stand out; a click there seeks to that moment.
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

export function fetchDensity(liveId: string, widthPx: number, types = 'comment'): Promise<Density> {
  const buckets = Math.max(10, Math.min(MAX_BUCKETS, Math.round(widthPx / PIXELS_PER_BUCKET)));
  return api<Density>(`/v1/lives/${encodeURIComponent(liveId)}/density?buckets=${buckets}&types=${encodeURIComponent(types)}`);
}

export class DensityCurve {
  private density: Density | null = null;
  /** The seek bar's length (ms): the curve is laid out on it, which may be longer than the live (a recording). */
  private totalMs = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    onSeek: (ms: number) => void,
  ) {
    canvas.addEventListener('click', (event) => {
      if (this.totalMs <= 0) return;
      const box = canvas.getBoundingClientRect();
      const at = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      onSeek(Math.round(at * this.totalMs));
    });
    new ResizeObserver(() => this.draw()).observe(canvas);
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
    const total = Math.max(this.totalMs, d?.durationMs ?? 0);
    const peak = d ? Math.max(...d.counts) : 0;
    canvas.dataset.peak = String(peak);
    if (!d || peak === 0 || total <= 0) return;
    const x = (ms: number): number => (ms / total) * width;
    const y = (count: number): number => height - (count / peak) * (height - 2);
    ctx.beginPath();
    ctx.moveTo(0, height);
    // Each span's count at its middle, joined by straight lines: a curve, not a bar chart.
    d.counts.forEach((count, i) => ctx.lineTo(x((i + 0.5) * d.bucketMs), y(count)));
    ctx.lineTo(x(d.counts.length * d.bucketMs), height);
    ctx.closePath();
    ctx.fillStyle = 'rgba(255, 102, 153, 0.45)';
    ctx.fill();
    ctx.strokeStyle = 'rgba(255, 102, 153, 0.9)';
    ctx.lineWidth = ratio;
    ctx.stroke();
  }
}
