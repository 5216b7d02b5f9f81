/**
 * `npm run load -- --target URL ...`: drives a running deployment (any URL) with viewers on every
 * wire and senders, then writes DIR/report.json and DIR/report.html. `--help` for the options.
 *
 * Phases: connect (over --ramp-seconds), send (--seconds), drain (until every ready viewer got
 * every acknowledged message sent after it was ready, or --drain-seconds). The clients run in
 * forked worker processes (bench/lib/load/worker.ts); this process plans, collects and reports.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP, UsageError, parseLoadArgs, type LoadOptions } from './lib/load/args.js';
import type { Transport } from './lib/load/clients.js';
import { planViewers, type SenderSpec, type ViewerSpec } from './lib/load/plan.js';
import type { FromWorker, ToWorker, ViewerTotals } from './lib/load/protocol.js';
import { renderHtml, type LoadReport, type RoomReport, type TimelinePoint, type TransportReport } from './lib/load/report.js';
import { SetupError, biliRoomids, discover, tokens } from './lib/load/setup.js';
import { Histogram } from './lib/load/stats.js';
import { inBatches } from './lib/load/batches.js';
import type { Message } from '@danmaku/protocol';
import { readRoom } from '@danmaku/testkit';

const WORKER = fileURLToPath(new URL('./lib/load/worker.ts', import.meta.url));

function fail(code: number, message: string): never {
  process.stderr.write(`load: ${message}\n`);
  process.exit(code);
}

let options: LoadOptions;
try {
  const parsed = parseLoadArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  options = parsed;
} catch (err) {
  if (err instanceof UsageError) fail(2, `${err.message}\nRun "npm run load -- --help" for the options.`);
  throw err;
}

const runId = randomBytes(3).toString('hex');
const startedAt = new Date();
const t0 = Date.now();
const roomIds = Array.from({ length: options.rooms }, (_, i) => `${options.roomPrefix}${i}`);
const bili = options.transports.some((t) => t.startsWith('bilibili'));

let viewers: ViewerSpec[];
let senders: SenderSpec[];
let route: LoadReport['route'];
try {
  const endpoints = await discover(options);
  route = { ...endpoints.route, socketio: endpoints.socketio, biliWs: endpoints.biliWs, biliTcp: endpoints.biliTcp };
  const tokenSource = await tokens(options, runId);
  const roomids = bili ? await biliRoomids(options.target, roomIds, tokenSource) : new Map<string, number>();
  viewers = planViewers({
    target: options.target,
    roomIds,
    viewers: options.viewers,
    hugeRoomShare: options.hugeRoomShare,
    transports: options.transports,
    endpoints: { poll: [options.target], socketio: endpoints.socketio, 'bilibili-ws': endpoints.biliWs, 'bilibili-tcp': endpoints.biliTcp },
    roomids,
    viewerToken: options.anonymousViewers ? () => undefined : tokenSource.viewer,
    rampMs: options.rampSeconds * 1000,
    sourceAddresses: options.sourceAddresses,
  });
  senders = Array.from({ length: options.senders }, (_, j) => ({ index: j, token: tokenSource.sender(j), ratePerS: options.rate / options.senders, offset: j, stride: options.senders }));
} catch (err) {
  if (err instanceof SetupError) fail(3, err.message);
  throw err;
}

// ---------------------------------------------------------------- workers

const workerCount = Math.max(1, Math.min(options.workers, viewers.length + senders.length));
interface WorkerState {
  child: ChildProcess;
  connected: Partial<Record<Transport, number>>;
  outstanding: number | null;
  sendDone: boolean;
  final: Extract<FromWorker, { t: 'final' }> | null;
}
const workers: WorkerState[] = [];

/** What arrived since the coordinator's last second, rolled into the timeline by `second()`. */
const now = { deliveries: new Map<Transport, number>(), hist: new Map<Transport, Histogram>(), errors: new Map<string, number>(), sent: 0, acked: 0 };
const total = { hist: new Map<Transport, Histogram>(), e2e: new Map<Transport, Histogram>(), errors: new Map<Transport, number>(), sent: 0, acked: 0 };
const sendErrors: Record<string, number> = {};
const acked: Record<number, [string, number][]> = {};
const sentPerRoom = new Map<number, number>();

const histOf = (m: Map<Transport, Histogram>, t: Transport): Histogram => {
  let h = m.get(t);
  if (!h) m.set(t, (h = new Histogram()));
  return h;
};

function onTick(w: WorkerState, msg: Extract<FromWorker, { t: 'tick' }>): void {
  for (const [name, x] of Object.entries(msg.transports)) {
    const t = name as Transport;
    w.connected[t] = x.connected;
    now.deliveries.set(t, (now.deliveries.get(t) ?? 0) + x.deliveries);
    now.errors.set(t, (now.errors.get(t) ?? 0) + x.errors);
    total.errors.set(t, (total.errors.get(t) ?? 0) + x.errors);
    histOf(now.hist, t).merge(x.hist);
    histOf(total.hist, t).merge(x.hist);
    histOf(total.e2e, t).merge(x.e2e);
  }
  const s = msg.senders;
  now.sent += s.sent;
  now.acked += s.acked;
  total.sent += s.sent;
  total.acked += s.acked;
  for (const [k, v] of Object.entries(s.errors)) {
    sendErrors[k] = (sendErrors[k] ?? 0) + v;
    now.errors.set('send', (now.errors.get('send') ?? 0) + v);
  }
  for (const [room, id, at] of s.acks) (acked[room] ??= []).push([id, at]);
  w.outstanding = msg.outstanding;
  w.sendDone = msg.sendDone;
}

for (let k = 0; k < workerCount; k++) {
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const w: WorkerState = { child, connected: {}, outstanding: null, sendDone: false, final: null };
  child.on('message', (msg: FromWorker) => {
    if (msg.t === 'tick') onTick(w, msg);
    else w.final = msg;
  });
  child.on('exit', (code) => {
    if (!w.final && code !== 0) fail(3, `a client process exited with ${code} before it reported`);
  });
  workers.push(w);
}
const tell = (w: WorkerState, msg: ToWorker): void => {
  if (w.child.connected) w.child.send(msg);
};
workers.forEach((w, k) => {
  tell(w, {
    t: 'start',
    target: options.target,
    runId,
    protover: options.biliProtover,
    roomIds,
    viewers: viewers.filter((_, i) => i % workerCount === k),
    senders: senders.filter((_, j) => j % workerCount === k),
    sendSeconds: options.seconds,
  });
});
for (const s of senders) {
  for (let n = 0; n < Math.floor(s.ratePerS * options.seconds); n++) {
    const room = (s.offset + n * s.stride) % roomIds.length;
    sentPerRoom.set(room, (sentPerRoom.get(room) ?? 0) + 1);
  }
}

// ---------------------------------------------------------------- progress, one line a second

let phase = 'connecting';
const timeline: TimelinePoint[] = [];
const plannedPer = new Map<Transport, number>();
for (const v of viewers) plannedPer.set(v.transport, (plannedPer.get(v.transport) ?? 0) + 1);
const short: Record<Transport, string> = { poll: 'poll', socketio: 'sio', 'bilibili-ws': 'bws', 'bilibili-tcp': 'btcp' };
const connectedNow = (t: Transport): number => workers.reduce((a, w) => a + (w.connected[t] ?? 0), 0);
const ms = (v: number | null): string => (v === null ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(1)}s` : `${v}ms`);

function second(): void {
  const point: TimelinePoint = { t: Math.round((Date.now() - t0) / 100) / 10, phase, connected: {}, deliveries: {}, p50Ms: {}, p99Ms: {}, errors: {}, sent: now.sent, acked: now.acked };
  for (const t of options.transports) {
    point.connected[t] = connectedNow(t);
    point.deliveries[t] = now.deliveries.get(t) ?? 0;
    const h = now.hist.get(t);
    point.p50Ms[t] = h?.quantile(0.5) ?? null;
    point.p99Ms[t] = h?.quantile(0.99) ?? null;
    point.errors[t] = now.errors.get(t) ?? 0;
    h?.reset();
  }
  point.errors.send = now.errors.get('send') ?? 0;
  timeline.push(point);
  now.deliveries.clear();
  now.errors.clear();
  now.sent = 0;
  now.acked = 0;
  const delivered = [...total.hist.values()].reduce((a, h) => a + h.total, 0);
  const parts = options.transports.map((t) => `${short[t]} ${connectedNow(t)}/${plannedPer.get(t) ?? 0} p99 ${ms(total.hist.get(t)?.quantile(0.99) ?? null)}`);
  const line = `load ${Math.round((Date.now() - t0) / 1000)}s ${phase}: ${parts.join(', ')} | sent ${total.sent} acked ${total.acked} | delivered ${delivered}`;
  process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
}
const progress = setInterval(second, 1000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// Ctrl-C: stop where it is and report what it has; a second Ctrl-C leaves at once.
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write('\nload: interrupted; finishing the report (Ctrl-C again to leave at once)\n');
});

async function until(check: () => boolean, deadline: number, evenIfInterrupted = false): Promise<boolean> {
  while (Date.now() < deadline && (evenIfInterrupted || !interrupted)) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

// Connect: every viewer ready or refused, within the ramp and 15 s more.
const closedSoFar = (): number => [...total.errors.values()].reduce((a, b) => a + b, 0);
const readyAll = (): number => options.transports.reduce((a, t) => a + connectedNow(t), 0);
// A crowd without a ramp connects in bursts (bench/lib/load/worker.ts): allow it 2 ms a viewer on top.
await until(() => readyAll() + closedSoFar() >= viewers.length, Date.now() + options.rampSeconds * 1000 + 15_000 + viewers.length * 2);

// Send.
phase = 'sending';
for (const w of workers) tell(w, { t: 'send' });
await until(() => workers.every((w) => w.sendDone), Date.now() + options.seconds * 1000 + 30_000);

// Drain: every worker counts what its ready viewers still miss.
phase = 'draining';
for (const w of workers) w.outstanding = null;
for (const w of workers) tell(w, { t: 'expect', acked });
await until(() => workers.every((w) => w.outstanding === 0), Date.now() + options.drainSeconds * 1000);

phase = 'finishing';
for (const w of workers) tell(w, { t: 'finish' });
await until(() => workers.every((w) => w.final !== null || w.child.exitCode !== null), Date.now() + 30_000, true);
clearInterval(progress);
second();
if (process.stderr.isTTY) process.stderr.write('\n');

// ---------------------------------------------------------------- the report

const byKey = new Map<string, ViewerTotals>();
const reasons: Record<string, number> = {};
for (const w of workers) {
  for (const [key, t] of Object.entries(w.final?.totals ?? {})) {
    const sum = byKey.get(key) ?? { viewers: 0, connected: 0, ready: 0, expected: 0, delivered: 0, duplicated: 0, missing: 0 };
    for (const f of Object.keys(sum) as (keyof ViewerTotals)[]) sum[f] += t[f];
    byKey.set(key, sum);
  }
  for (const [k, v] of Object.entries(w.final?.reasons ?? {})) reasons[k] = (reasons[k] ?? 0) + v;
}
const missingWorkers = workers.filter((w) => !w.final).length;

const transports: Partial<Record<Transport, TransportReport>> = {};
for (const t of options.transports) {
  const sum = { viewers: 0, connected: 0, ready: 0, expected: 0, delivered: 0, duplicated: 0, missing: 0 };
  for (const [key, x] of byKey) if (key.startsWith(`${t}/`)) for (const f of Object.keys(sum) as (keyof ViewerTotals)[]) sum[f] += x[f];
  const h = total.hist.get(t);
  const e2e = total.e2e.get(t);
  transports[t] = {
    viewers: plannedPer.get(t) ?? 0,
    connected: sum.ready,
    connectedAtEnd: sum.connected,
    expected: sum.expected,
    delivered: sum.delivered,
    lost: sum.expected - sum.delivered,
    duplicated: sum.duplicated,
    viewersWithLoss: sum.missing,
    p50Ms: h?.quantile(0.5) ?? null,
    p90Ms: h?.quantile(0.9) ?? null,
    p99Ms: h?.quantile(0.99) ?? null,
    maxMs: h?.quantile(1) ?? null,
    sendToDeliveryP50Ms: e2e?.quantile(0.5) ?? null,
    sendToDeliveryP99Ms: e2e?.quantile(0.99) ?? null,
    errors: total.errors.get(t) ?? 0,
  };
}

const rooms: RoomReport[] = roomIds.map((roomId, room) => {
  const r: RoomReport = { roomId, viewers: 0, byTransport: {}, sent: sentPerRoom.get(room) ?? 0, acked: acked[room]?.length ?? 0, expected: 0, delivered: 0, lost: 0, duplicated: 0 };
  const roomid = viewers.find((v) => v.room === room && v.roomid !== undefined)?.roomid;
  if (roomid !== undefined) r.roomid = roomid;
  for (const t of options.transports) {
    const x = byKey.get(`${t}/${room}`);
    if (!x) continue;
    r.viewers += x.viewers;
    r.byTransport[t] = x.viewers;
    r.expected += x.expected;
    r.delivered += x.delivered;
    r.duplicated += x.duplicated;
  }
  r.lost = r.expected - r.delivered;
  return r;
});

// What the deployment stored: each room read from its first message by cursor over the public poll
// API. An acknowledged message missing there is an accepted message lost, whatever the viewers saw.
let storedAll: number | null = null;
let ackedMissing = 0;
if (options.storedCheck && !interrupted) {
  process.stderr.write(`load: reading ${rooms.length} room(s) back\n`);
  storedAll = 0;
  await inBatches(rooms, 8, async (r, room) => {
    const read: Message[] = [];
    const want = new Set((acked[room] ?? []).map(([id]) => id));
    const mine = (): Message[] => read.filter((m) => m.content?.startsWith(`L ${runId} `));
    // A room holding more than its retention answers from the newest window (skipped): its older
    // messages are only in the archive, so the check says so instead of calling them lost.
    let pastRetention = false;
    const done = (): boolean => pastRetention || mine().filter((m) => want.has(m.id)).length >= want.size;
    try {
      await readRoom(options.target, r.roomId, { until: done, timeoutMs: 10_000, intervalMs: 200, into: read, onPage: (page) => (pastRetention ||= page.skipped === true) });
    } catch {
      // Timed out: what was read is the answer.
    }
    r.stored = mine().length;
    r.ackedStored = mine().filter((m) => want.has(m.id)).length;
    storedAll = (storedAll ?? 0) + r.stored;
    if (pastRetention) r.storedPastRetention = true;
    else ackedMissing += want.size - r.ackedStored;
  });
}

const failures: string[] = [];
if (interrupted) failures.push('interrupted');
if (missingWorkers > 0) failures.push(`${missingWorkers} client process(es) did not report`);
if (ackedMissing > 0) failures.push(`${ackedMissing} acknowledged message(s) not stored`);
{
  for (const [t, x] of Object.entries(transports)) {
    const limit = options.maxP99MsByTransport[t as Transport] ?? options.maxP99Ms;
    if (limit !== null && x.p99Ms !== null && x.p99Ms > limit) failures.push(`${t} p99 ${x.p99Ms} ms > ${limit} ms`);
  }
}
const lostAll = Object.values(transports).reduce((a, x) => a + x.lost, 0);
if (options.maxLost !== null && lostAll > options.maxLost) failures.push(`lost ${lostAll} > ${options.maxLost}`);

const report: LoadReport = {
  target: options.target,
  seconds: options.seconds,
  sent: total.sent,
  acked: total.acked,
  stored: storedAll,
  transports,
  rooms,
  runId,
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  options: { ...options, jwtSecret: options.jwtSecret === null ? null : '(set)', workers: workerCount },
  route,
  sendErrors,
  connectionErrors: reasons,
  timeline,
  interrupted,
  thresholds: { maxP99Ms: options.maxP99Ms, maxP99MsByTransport: options.maxP99MsByTransport, maxLost: options.maxLost, passed: failures.length === 0, failures },
};
const out = resolve(options.out);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(out, 'report.html'), renderHtml(report));

const header = ['transport', 'viewers', 'connected', 'expected', 'delivered', 'lost', 'dup', 'p50 ms', 'p90 ms', 'p99 ms'];
const lines = Object.entries(transports).map(([t, x]) => [t, x.viewers, x.connected, x.expected, x.delivered, x.lost, x.duplicated, x.p50Ms ?? '-', x.p90Ms ?? '-', x.p99Ms ?? '-'].map(String));
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
process.stdout.write(`\n${row(header)}\n${lines.map(row).join('\n')}\n\nsent ${total.sent}, acked ${total.acked}${storedAll === null ? '' : `, stored ${storedAll}`}${Object.keys(sendErrors).length ? `, refused ${JSON.stringify(sendErrors)}` : ''}\nreport: ${join(out, 'report.json')}\n        ${join(out, 'report.html')}\n`);
if (failures.length > 0) process.stdout.write(`thresholds missed: ${failures.join('; ')}\n`);
process.exit(interrupted ? 130 : failures.length > 0 ? 1 : 0);
