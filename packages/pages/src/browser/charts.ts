/**
 * Small line charts of the last 10 minutes, hand-drawn in SVG (no chart library): the studio
 * charts its room from the `/v1/rooms/:roomId/stats` samples it reads every few seconds, the admin
 * page its deployment from `/metrics`. Samples live in this page (and in sessionStorage, so a
 * reload keeps the curve); the first point is the page's first sample.
 *
 * Each chart is a `<figure data-chart=ID>` whose caption names each series with its newest value;
 * the SVG has one `<polyline data-series=KEY>` per series, scaled to the largest value shown.
 */
const WINDOW_MS = 10 * 60_000;
const WIDTH = 300;
const HEIGHT = 70;
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#2458c5', '#e0245e', '#1d7a4a', '#b86e00', '#7a3fc0', '#0f8ea0'];

export interface SeriesSpec {
  key: string;
  label: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  series: SeriesSpec[];
  /** How a value is written in the caption (default: up to one decimal). */
  format?: (value: number) => string;
}

interface Sample {
  at: number;
  values: Record<string, number>;
}

const plain = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(1));

export class Charts {
  private samples: Sample[] = [];
  private readonly figures = new Map<string, { caption: HTMLElement; lines: Map<string, SVGPolylineElement> }>();

  constructor(
    container: HTMLElement,
    private readonly specs: ChartSpec[],
    private readonly storageKey?: string,
  ) {
    container.classList.add('charts');
    for (const spec of specs) container.append(this.figure(spec));
    if (storageKey) {
      try {
        const kept = JSON.parse(sessionStorage.getItem(storageKey) ?? '[]') as Sample[];
        if (Array.isArray(kept)) this.samples = kept.filter((s) => typeof s?.at === 'number' && typeof s.values === 'object');
      } catch {
        // A sample list that does not parse is started afresh.
      }
    }
  }

  /** One sample of every series (missing ones count as gaps), taken now. */
  add(values: Record<string, number>, at = Date.now()): void {
    this.samples.push({ at, values });
    this.samples = this.samples.filter((s) => s.at > at - WINDOW_MS);
    if (this.storageKey) sessionStorage.setItem(this.storageKey, JSON.stringify(this.samples));
    this.draw(at);
  }

  private figure(spec: ChartSpec): HTMLElement {
    const figure = document.createElement('figure');
    figure.className = 'chart';
    figure.dataset.chart = spec.id;
    const caption = document.createElement('figcaption');
    caption.textContent = spec.title;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${spec.title}, last 10 minutes`);
    const base = document.createElementNS(SVG, 'line');
    for (const [k, v] of Object.entries({ x1: 0, x2: WIDTH, y1: HEIGHT - 1, y2: HEIGHT - 1, stroke: '#dde1e7' })) base.setAttribute(k, String(v));
    svg.append(base);
    const lines = new Map<string, SVGPolylineElement>();
    spec.series.forEach((series, i) => {
      const line = document.createElementNS(SVG, 'polyline');
      line.dataset.series = series.key;
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', COLORS[i % COLORS.length] as string);
      line.setAttribute('stroke-width', '1.5');
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      svg.append(line);
      lines.set(series.key, line);
    });
    figure.append(caption, svg);
    this.figures.set(spec.id, { caption, lines });
    return figure;
  }

  private draw(now: number): void {
    const from = now - WINDOW_MS;
    for (const spec of this.specs) {
      const figure = this.figures.get(spec.id);
      if (!figure) continue;
      const format = spec.format ?? plain;
      let max = 0;
      for (const s of this.samples) for (const { key } of spec.series) max = Math.max(max, s.values[key] ?? 0);
      const scale = max > 0 ? max : 1;
      const parts: (string | HTMLElement)[] = [spec.title];
      spec.series.forEach(({ key, label }, i) => {
        const points = this.samples
          .filter((s) => Number.isFinite(s.values[key]))
          .map((s) => `${(((s.at - from) / WINDOW_MS) * WIDTH).toFixed(1)},${(HEIGHT - 2 - ((s.values[key] as number) / scale) * (HEIGHT - 14)).toFixed(1)}`);
        figure.lines.get(key)?.setAttribute('points', points.join(' '));
        const last = [...this.samples].reverse().find((s) => Number.isFinite(s.values[key]))?.values[key];
        const item = document.createElement('span');
        item.className = 'series';
        item.dataset.series = key;
        item.dataset.last = last === undefined ? '' : String(last);
        // The legend's swatch takes the line's colour through a class, not an inline style (CSP).
        item.classList.add(`c${i % COLORS.length}`);
        item.textContent = `${label} ${last === undefined ? '–' : format(last)}`;
        parts.push(item);
      });
      // Text stays out of the SVG, which stretches to the panel's width.
      const top = document.createElement('span');
      top.className = 'max';
      top.textContent = `max ${format(max)} · 10 min`;
      figure.caption.replaceChildren(...parts, top);
    }
  }
}

/** What the studio's stats answer gives the charts. */
export interface RoomStatsSample {
  online: number;
  likes: number;
  gear: number;
  types: Record<string, { perSecond: number }>;
}

/** The studio's charts, put before its stats table. */
export function roomCharts(statsTable: HTMLElement, roomId: string): (stats: RoomStatsSample) => void {
  const container = document.createElement('div');
  (statsTable.closest('table') ?? statsTable).before(container);
  const types = ['comment', 'gift', 'like', 'enter', 'system'];
  const charts = new Charts(
    container,
    [
      { id: 'rate', title: 'messages/s', series: types.map((t) => ({ key: t, label: t })) },
      { id: 'online', title: 'online', series: [{ key: 'online', label: 'now' }] },
      { id: 'likes', title: 'likes', series: [{ key: 'likes', label: 'total' }] },
      { id: 'gear', title: 'gear', series: [{ key: 'gear', label: 'room' }] },
    ],
    `danmaku.charts.room.${roomId}`,
  );
  return (stats) => {
    const values: Record<string, number> = { online: stats.online, likes: stats.likes, gear: stats.gear };
    for (const t of types) values[t] = stats.types[t]?.perSecond ?? 0;
    charts.add(values);
  };
}

/** The admin page's charts of this deployment's /metrics rates, put before its metrics table. */
export function deploymentCharts(metricsTable: HTMLElement): (values: Record<string, number>) => void {
  const container = document.createElement('div');
  (metricsTable.closest('table') ?? metricsTable).before(container);
  const charts = new Charts(
    container,
    [
      { id: 'ingest', title: 'messages accepted/s', series: [{ key: 'messages accepted', label: 'now' }] },
      { id: 'polls', title: 'polls/s', series: [{ key: 'polls from local cache', label: 'cache' }, { key: 'polls from Redis', label: 'Redis' }] },
      { id: 'likes', title: 'likes/s', series: [{ key: 'likes accepted', label: 'now' }] },
      { id: 'errors', title: 'error answers/s', series: [{ key: 'error answers', label: 'all' }, { key: 'of which 5xx', label: '5xx' }] },
      { id: 'sockets', title: 'sockets', series: [{ key: 'sockets', label: 'open' }] },
    ],
    'danmaku.charts.admin',
  );
  return (values) => charts.add(values);
}
