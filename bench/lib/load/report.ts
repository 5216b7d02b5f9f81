/** The load tool's report: report.json for machines, report.html (inline SVG, no assets) for people. */
import type { Transport } from './clients.js';

export interface TransportReport {
  viewers: number;
  /** Viewers that became ready (joined, authenticated, first poll answered). */
  connected: number;
  connectedAtEnd: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Viewers that got less than they were owed. */
  viewersWithLoss: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  sendToDeliveryP50Ms: number | null;
  sendToDeliveryP99Ms: number | null;
  errors: number;
}

export interface RoomReport {
  roomId: string;
  roomid?: number;
  viewers: number;
  byTransport: Partial<Record<Transport, number>>;
  sent: number;
  acked: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** This run's messages the room holds, read back after the run (not with --no-stored-check). */
  stored?: number;
  /** How many of the acknowledged ones are among them (less than acked: accepted messages lost). */
  ackedStored?: number;
  /** The room held more than its retention: the read-back saw only the newest, so nothing was judged. */
  storedPastRetention?: boolean;
}

export interface TimelinePoint {
  /** Seconds since the tool started. */
  t: number;
  phase: string;
  connected: Partial<Record<Transport, number>>;
  deliveries: Partial<Record<Transport, number>>;
  p50Ms: Partial<Record<Transport, number | null>>;
  p99Ms: Partial<Record<Transport, number | null>>;
  errors: Partial<Record<Transport | 'send', number>>;
  sent: number;
  acked: number;
}

export interface LoadReport {
  target: string;
  seconds: number;
  sent: number;
  acked: number;
  /** This run's messages the rooms hold when read back; null when not checked. */
  stored: number | null;
  transports: Partial<Record<Transport, TransportReport>>;
  rooms: RoomReport[];
  runId: string;
  startedAt: string;
  finishedAt: string;
  options: Record<string, unknown>;
  route: { mode: string; reason?: string; socketio: string[]; biliWs: string[]; biliTcp: string[] };
  sendErrors: Record<string, number>;
  connectionErrors: Record<string, number>;
  timeline: TimelinePoint[];
  /** Stopped by Ctrl-C before the end. */
  interrupted: boolean;
  thresholds: { maxP99Ms: number | null; maxP99MsByTransport: Partial<Record<string, number>>; maxLost: number | null; passed: boolean; failures: string[] };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
  color?: string;
}

/** 1, 2 or 5 times a power of ten, at least `v`: axis ticks at quarters of it stay readable. */
function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 4, 5, 10].map((m) => m * p).find((m) => m >= v) ?? 10 * p);
}

/** Width, height and the margins (left, right for the legend, top for the title, bottom for the axis). */
const CHART = { W: 760, H: 240, L: 60, R: 150, T: 28, B: 30 };

/** A line chart as an SVG element: x in seconds, y from 0 to the largest value. */
export function lineChart(title: string, yUnit: string, series: Series[], xEnd?: number): string {
  const { W, H, L, R, T, B } = CHART;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, xEnd ?? 0, ...xs);
  const yMax = niceMax(Math.max(1, ...ys));
  const x = (v: number): number => L + (v / xMax) * (W - L - R);
  const y = (v: number): number => H - B - (v / yMax) * (H - T - B);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`];
  parts.push(`<text x="${L}" y="16" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const v of ticks) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${Number(v.toPrecision(3))}</text>`);
  }
  parts.push(`<text x="${(W - R) / 2 + L / 2}" y="${H - 6}" font-size="11" text-anchor="middle">seconds</text>`);
  parts.push(`<text x="12" y="${T + (H - T - B) / 2}" font-size="11" transform="rotate(-90 12 ${T + (H - T - B) / 2})" text-anchor="middle">${esc(yUnit)}</text>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#888"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#888"/>`);
  for (const v of [0, xMax / 2, xMax]) parts.push(`<text x="${x(v).toFixed(1)}" y="${H - B + 14}" font-size="11" text-anchor="middle">${Math.round(v)}</text>`);
  series.forEach((s, i) => {
    const color = s.color ?? (COLORS[i % COLORS.length] as string);
    if (s.points.length > 0) {
      const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    }
    parts.push(`<line x1="${W - R + 10}" x2="${W - R + 26}" y1="${T + i * 18 + 1}" y2="${T + i * 18 + 1}" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="4,2"' : ''}/><text x="${W - R + 30}" y="${T + i * 18 + 5}" font-size="12">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

export function renderHtml(r: LoadReport): string {
  const names = Object.keys(r.transports) as Transport[];
  // Every chart on the run's whole time axis, so they line up.
  const end = r.timeline.at(-1)?.t ?? 1;
  const chart = (title: string, unit: string, series: Series[]): string => lineChart(title, unit, series, end);
  type Field = 'connected' | 'deliveries' | 'p50Ms' | 'p99Ms' | 'errors';
  const colorOf = (n: string): string => COLORS[[...names, 'send'].indexOf(n) % COLORS.length] as string;
  const seriesOf = (field: Field, only: string[], label = (n: string) => n, dashed = false): Series[] =>
    only.map((n) => ({
      name: label(n),
      dashed,
      color: colorOf(n),
      points: r.timeline.flatMap((p): [number, number][] => {
        const v = (p[field] as Record<string, number | null | undefined>)[n];
        return v === null || v === undefined ? [] : [[p.t, v]];
      }),
    }));
  // One latency chart per transport: polls wait seconds where pushes take milliseconds, and one
  // shared axis would flatten the pushes into its floor.
  const latencyCharts = names
    .map((n) => chart(`Delivery latency, ${n} (receive time - message ts)`, 'ms', [...seriesOf('p99Ms', [n], () => 'p99'), ...seriesOf('p50Ms', [n], () => 'p50', true)]))
    .join('\n');
  const errorSeries = seriesOf('errors', [...names, 'send']);
  const rows = names
    .map((n) => {
      const t = r.transports[n] as TransportReport;
      return `<tr><td>${n}</td><td>${t.viewers}</td><td>${t.connected}</td><td>${t.expected}</td><td>${t.delivered}</td><td>${t.lost}</td><td>${t.duplicated}</td><td>${fmt(t.p50Ms)}</td><td>${fmt(t.p90Ms)}</td><td>${fmt(t.p99Ms)}</td><td>${fmt(t.sendToDeliveryP99Ms)}</td><td>${t.errors}</td></tr>`;
    })
    .join('\n');
  const roomRows = r.rooms
    .slice(0, 50)
    .map((x) => `<tr><td>${esc(x.roomId)}</td><td>${x.viewers}</td><td>${x.acked}</td><td>${x.expected}</td><td>${x.delivered}</td><td>${x.lost}</td><td>${x.duplicated}</td><td>${fmt(x.ackedStored)}${x.storedPastRetention ? ' (past retention)' : ''}</td></tr>`)
    .join('\n');
  const reasons = Object.entries({ ...r.sendErrors, ...r.connectionErrors })
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `<li>${esc(k)}: ${v}</li>`)
    .join('');
  const verdict = r.thresholds.passed ? '<p class="ok">thresholds met</p>' : `<p class="bad">thresholds missed: ${r.thresholds.failures.map(esc).join('; ')}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test of ${esc(r.target)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}.ok{color:#2a7d2a;font-weight:bold}.bad{color:#b22;font-weight:bold}svg{display:block;margin:12px 0}</style>
</head><body>
<h1>Load test of ${esc(r.target)}</h1>
<p>${esc(r.startedAt)} to ${esc(r.finishedAt)}; sending ${r.seconds} s; sent ${r.sent}, acknowledged ${r.acked}${r.stored === null ? '' : `, stored (read back) ${r.stored}`}; route mode ${esc(r.route.mode)}${r.route.reason ? ` (${esc(r.route.reason)})` : ''}.</p>
${verdict}
<table><tr><th>transport</th><th>viewers</th><th>connected</th><th>expected</th><th>delivered</th><th>lost</th><th>duplicated</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>send-to-delivery p99 ms</th><th>errors</th></tr>
${rows}</table>
${latencyCharts}
${chart('Deliveries per second', 'deliveries/s', seriesOf('deliveries', names))}
${chart('Connected viewers', 'viewers', seriesOf('connected', names))}
${chart('Errors per second (connections ended, failed polls, refused sends)', 'errors/s', errorSeries)}
<h2>Errors</h2><ul>${reasons || '<li>none</li>'}</ul>
<h2>Rooms${r.rooms.length > 50 ? ' (first 50)' : ''}</h2>
<table><tr><th>room</th><th>viewers</th><th>acked</th><th>expected</th><th>delivered</th><th>lost</th><th>duplicated</th><th>acked and stored</th></tr>
${roomRows}</table>
</body></html>
`;
}
