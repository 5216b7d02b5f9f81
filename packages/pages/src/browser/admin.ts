/**
 * The operators' dashboard (`/admin`): degrade switches, the routing config (when the router runs
 * in this process, as with `npm start`) and a few live numbers read from this process's /metrics.
 */
// Types only: esbuild drops these imports, so no server code reaches the browser bundle.
import type { RouteConfig, RouteLists as Lists } from '@danmaku/router';
import type { Switches } from '@danmaku/switches';
import { deploymentCharts } from './charts.js';
import { api, ApiFailure, byId, claimsOf, describe } from './common.js';


const TOKEN_KEY = 'danmaku.adminToken';
const METRICS_EVERY_MS = 2000;

let token = localStorage.getItem(TOKEN_KEY) ?? '';

function say(text: string, isError = false): void {
  const status = byId('admin-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

const input = (id: string): HTMLInputElement => byId<HTMLInputElement>(id);
const splitList = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function row(cells: string[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (i > 0) td.className = 'num';
    tr.append(td);
  });
  return tr;
}

// --- switches ----------------------------------------------------------------------------

function showSwitches(answer: { switches: Switches; gears: Record<string, number> }): void {
  const s = answer.switches;
  input('sw-enterMessages').checked = s.enterMessages;
  input('sw-likes').checked = s.likes;
  input('sw-forcePolling').checked = s.forcePolling;
  input('sw-pollIntervalMs').value = String(s.pollIntervalMs);
  input('sw-readOnlyRooms').value = s.readOnlyRooms.join(', ');
  input('sw-bigRoomSampleRatio').value = String(s.bigRoomSampleRatio);
  const gears = Object.entries(answer.gears);
  byId('gears').replaceChildren(...(gears.length ? gears.map(([stream, gear]) => row([stream, `gear ${gear}`])) : [row(['none: every stream in gear 1'])]));
}

async function loadSwitches(): Promise<void> {
  showSwitches(await api('/v1/admin/switches', { token }));
}

async function saveSwitches(): Promise<void> {
  const patch: Switches = {
    enterMessages: input('sw-enterMessages').checked,
    likes: input('sw-likes').checked,
    forcePolling: input('sw-forcePolling').checked,
    pollIntervalMs: Number(input('sw-pollIntervalMs').value || 0),
    readOnlyRooms: splitList(input('sw-readOnlyRooms').value),
    bigRoomSampleRatio: Number(input('sw-bigRoomSampleRatio').value || 1),
  };
  showSwitches(await api('/v1/admin/switches', { method: 'PUT', token, body: patch }));
  say('Switches saved; every process applies them within about a second.');
}

// --- routing -----------------------------------------------------------------------------

function showRoute(config: RouteConfig): void {
  input('rt-enabled').checked = config.enabled;
  input('rt-percent').value = String(config.percent);
  input('rt-pollIntervalMs').value = String(config.pollIntervalMs);
  for (const list of ['blacklist', 'whitelist'] as const) {
    for (const field of ['uids', 'deviceIds', 'versions'] as const) input(`rt-${list}-${field}`).value = config[list][field].join(', ');
  }
}

interface Connector {
  id: string;
  url: string;
  sockets: number;
  rooms: number;
}

async function loadRoute(): Promise<void> {
  try {
    const { config, connectors } = await api<{ config: RouteConfig; connectors: Connector[] }>('/v1/admin/route-config', { token });
    showRoute(config);
    byId('connectors').replaceChildren(...connectors.map((c) => row([c.url, `${c.sockets} sockets`, `${c.rooms} rooms`])));
  } catch (err) {
    if (!(err instanceof ApiFailure) || err.status !== 404) throw err;
    byId('route-missing').hidden = false;
    byId('route').hidden = true;
  }
}

async function saveRoute(): Promise<void> {
  const lists = (list: 'blacklist' | 'whitelist'): Lists => ({
    uids: splitList(input(`rt-${list}-uids`).value),
    deviceIds: splitList(input(`rt-${list}-deviceIds`).value),
    versions: splitList(input(`rt-${list}-versions`).value),
  });
  const config: RouteConfig = {
    enabled: input('rt-enabled').checked,
    percent: Number(input('rt-percent').value || 0),
    pollIntervalMs: Number(input('rt-pollIntervalMs').value || 0),
    blacklist: lists('blacklist'),
    whitelist: lists('whitelist'),
  };
  showRoute((await api<{ config: RouteConfig }>('/v1/admin/route-config', { method: 'PUT', token, body: config })).config);
  say('Routing saved; clients follow it on their next GET /v1/route.');
}

// --- metrics -----------------------------------------------------------------------------

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Prometheus text format: `name{label="value",...} number`, comments skipped. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match?.[1] || match[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) if (key) labels[key] = value ?? '';
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

const sum = (samples: Sample[], name: string, where: (l: Record<string, string>) => boolean = () => true): number =>
  samples.filter((s) => s.name === name && where(s.labels)).reduce((total, s) => total + s.value, 0);

let previous: { at: number; values: Record<string, number> } | null = null;
const chartMetrics = deploymentCharts(byId('metrics'));

async function refreshMetrics(): Promise<void> {
  const response = await fetch('/metrics');
  if (!response.ok) return;
  const samples = parseMetrics(await response.text());
  const at = performance.now();
  const counters: Record<string, number> = {
    'messages accepted': sum(samples, 'danmaku_ingest_total'),
    'polls from local cache': sum(samples, 'danmaku_polls_total', (l) => l.source === 'cache'),
    'polls from Redis': sum(samples, 'danmaku_polls_total', (l) => l.source === 'redis'),
    'likes accepted': sum(samples, 'danmaku_likes_total'),
    'error answers': sum(samples, 'danmaku_http_errors_total'),
    'of which 5xx': sum(samples, 'danmaku_http_errors_total', (l) => (l.status ?? '').startsWith('5')),
  };
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const rates: Record<string, number> = {};
  const rows = Object.entries(counters).map(([label, value]) => {
    const rate = previous && seconds > 0 ? (value - (previous.values[label] ?? 0)) / seconds : 0;
    rates[label] = rate;
    return row([label, `${rate.toFixed(1)}/s`, `${value} total`]);
  });
  if (previous) chartMetrics({ ...rates, sockets: sum(samples, 'danmaku_connector_sockets') });
  previous = { at, values: counters };
  const polls = counters['polls from local cache']! + counters['polls from Redis']!;
  rows.push(row(['cache hit ratio', polls ? `${((100 * counters['polls from local cache']!) / polls).toFixed(0)} %` : '–', '']));
  rows.push(row(['cached (big) rooms', String(sum(samples, 'danmaku_front_cached_rooms')), '']));
  rows.push(row(['sockets', String(sum(samples, 'danmaku_connector_sockets')), '']));
  rows.push(row(['rooms over their delivery budget (sampled by the connector)', String(sum(samples, 'danmaku_connector_throttled_rooms')), '']));
  rows.push(row(['bus lag (records)', String(sum(samples, 'danmaku_bus_lag_records')), '']));
  const codes = samples
    .filter((s) => s.name === 'danmaku_http_errors_total' && s.value > 0)
    .sort((a, b) => b.value - a.value)
    .slice(0, 4);
  for (const s of codes) rows.push(row([`  ${s.labels.status ?? ''} ${s.labels.code ?? ''}`, '', `${s.value} total`]));
  byId('metrics').replaceChildren(...rows);
  byId('metrics-age').textContent = `(every ${METRICS_EVERY_MS / 1000} s)`;
}

// --- wiring ------------------------------------------------------------------------------

async function useToken(next: string): Promise<void> {
  token = next;
  localStorage.setItem(TOKEN_KEY, token);
  byId<HTMLTextAreaElement>('token').value = token;
  const claims = claimsOf(token);
  byId('who').textContent = claims ? `${claims.name} (${claims.role})` : '';
  try {
    await loadSwitches();
    await loadRoute();
    say('Loaded.');
  } catch (err) {
    say(describe(err), true);
  }
}

const submit = (id: string, action: () => Promise<void>): void =>
  byId<HTMLFormElement>(id).addEventListener('submit', (event) => {
    event.preventDefault();
    action().catch((err: unknown) => say(describe(err), true));
  });
submit('switches', saveSwitches);
submit('route', saveRoute);
byId('use-token').addEventListener('click', () => void useToken(byId<HTMLTextAreaElement>('token').value.trim()));

// No dev-token button here: the dev-token route never mints admin tokens.
if (token) void useToken(token);
else say('Paste an admin token to see and change the switches (npm run -s token -- --sub a --name A --role admin).');
void refreshMetrics();
setInterval(() => void refreshMetrics().catch(() => undefined), METRICS_EVERY_MS);
