/**
 * `npm run bench` (no name): every scenario in one run, each as its own child process with
 * bounded settings (one at a time, so they never share the machine), then ONE table: each
 * scenario beside its baseline measured in the same run, the ratio, the target and met / not met.
 * Also the "nothing lost" checks (the send bench's accepted = stored, fan-out and live show lost
 * = 0 and duplicated = 0); the exit code is 1 when any check fails or a scenario gave no result.
 * Each bench stays runnable alone (`npm run bench -- NAME`); this reads the
 * bench/results/NAME-latest.json each one writes (only if written during this run).
 * Writes bench/results/suite-<stamp>.json and suite-latest.json with the machine (cores, CPU
 * model, memory, Node version, load average at start and end). Child output: .run/bench-suite/.
 * `npm run bench -- all --report` builds the table from the latest results without running anything.
 * Knobs: BENCH_SUITE_ONLY=send,poll (a subset), BENCH_SUITE_SCALE=0.5 (shorter runs, for a try).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@danmaku/testkit';
import { writeResult } from './lib/report.js';

type Json = Record<string, unknown>;

interface Scenario {
  name: string;
  /** The JSON it writes: bench/results/<result>-latest.json. */
  result: string;
  args: string[];
  env: Record<string, string>;
  /** Expected seconds, for the ETA; the run is killed after 2.5x this (+60 s). */
  estimateS: number;
}

const scale = Math.min(1, Math.max(0.2, Number(process.env.BENCH_SUITE_SCALE ?? 1)));
const secs = (n: number) => String(Math.max(3, Math.round(n * scale)));
// Until bench/connections.ts exists, the fan-out bench's connections mode measures idle memory.
const connections: Scenario = existsSync(join(REPO_ROOT, 'bench', 'connections.ts'))
  ? { name: 'connections', result: 'connections', args: ['bench/connections.ts', '--clients', '10000'], env: {}, estimateS: 180 }
  : { name: 'connections', result: 'connections', args: ['bench/fanout.ts', '--mode', 'connections', '--clients', '10000'], env: {}, estimateS: 180 };
const ALL: Scenario[] = [
  { name: 'send', result: 'send', args: ['bench/send.ts'], env: { BENCH_DURATION_S: secs(8) }, estimateS: 40 },
  { name: 'poll', result: 'poll', args: ['bench/poll.ts'], env: { BENCH_DURATION_S: secs(5), BENCH_ROUNDS: '2' }, estimateS: 60 },
  { name: 'fanout', result: 'fanout', args: ['bench/fanout.ts', '--seconds', secs(10), '--drain', '20'], env: {}, estimateS: 200 },
  connections,
  { name: 'replay', result: 'replay', args: ['bench/replay.ts'], env: { BENCH_DURATION_S: secs(5) }, estimateS: 60 },
  { name: 'live-show', result: 'live-show', args: ['bench/live-show.ts', '--seconds', secs(60)], env: {}, estimateS: 150 },
];
const only = (process.env.BENCH_SUITE_ONLY ?? '').split(',').filter(Boolean);
const scenarios = only.length ? ALL.filter((s) => only.includes(s.name)) : ALL;

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const logDir = join(REPO_ROOT, '.run', 'bench-suite', stamp);
mkdirSync(logDir, { recursive: true });
const tty = process.stdout.isTTY;
const mmss = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? 'unknown',
  memoryMB: Math.round(totalmem() / 1048576),
  freeMemoryMBAtStart: Math.round(freemem() / 1048576),
  node: process.version,
  loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
  loadAverageAtEnd: [] as number[],
};
const suiteStart = Date.now();

interface Ran {
  name: string;
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
  log: string;
  /** Its bench/results JSON, when written during this run. */
  data: Json | null;
}

function readResult(name: string, since: number): Json | null {
  try {
    const data = JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', `${name}-latest.json`), 'utf8')) as Json;
    return Date.parse(String(data.at)) >= since ? data : null;
  } catch {
    return null;
  }
}

async function runOne(s: Scenario, index: number): Promise<Ran> {
  const started = Date.now();
  const log = join(logDir, `${s.name}.log`);
  const out = createWriteStream(log);
  const command = `${Object.entries(s.env).map(([k, v]) => `${k}=${v} `).join('')}node --import tsx ${s.args.join(' ')}`;
  out.write(`$ ${command}\n`);
  // Its own process group, so a run over its time is stopped with every server it started.
  const child = spawn(process.execPath, ['--import', 'tsx', ...s.args], { cwd: REPO_ROOT, env: { ...process.env, ...s.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  const limitMs = (s.estimateS * 2.5 + 60) * 1000;
  let timedOut = false;
  const remainingEstimate = () => scenarios.slice(index + 1).reduce((n, x) => n + x.estimateS * 1000, 0) + Math.max(0, s.estimateS * 1000 - (Date.now() - started));
  const progress = () => {
    const line = `[${index + 1}/${scenarios.length}] ${s.name.padEnd(11)} this ${mmss(Date.now() - started)}  elapsed ${mmss(Date.now() - suiteStart)}  ETA ${mmss(remainingEstimate())}`;
    process.stdout.write(tty ? `\r${line}   ` : `${line}\n`);
  };
  progress();
  const ticker = setInterval(progress, tty ? 1000 : 30_000);
  const killer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-(child.pid as number), 'SIGTERM');
      setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, 10_000).unref();
    } catch {
      // Already gone.
    }
  }, limitMs);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearInterval(ticker);
  clearTimeout(killer);
  out.end();
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  const data = readResult(s.result, started);
  const status = timedOut ? `STOPPED after ${Math.round(limitMs / 1000)} s` : exitCode === 0 ? 'ok' : `exit ${exitCode}`;
  process.stdout.write(`${tty ? '\r' : ''}[${index + 1}/${scenarios.length}] ${s.name.padEnd(11)} ${status}${data ? '' : ', NO RESULT'} in ${mmss(seconds * 1000)} (log ${log})      \n`);
  return { name: s.name, command, exitCode, timedOut, seconds, log, data };
}

// ---- reading the results (tolerant: a missing field is "n/a", never a crash) ----

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Json | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v.filter((x) => obj(x)) as Json[]) : []);
const get = (v: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), v);
const fmt = (n: number | null, digits = 0, unit = ''): string => (n === null ? 'n/a' : `${n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })}${unit}`);
const pct = (r: number | null): string => (r === null ? 'n/a' : `${Math.round(r * 100)} %`);
const times = (r: number | null, digits = 1): string => (r === null ? 'n/a' : `${r.toFixed(digits)}x`);
const div = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

interface Row {
  row: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  /** true met, false not met, null: no target or no data. */
  met: boolean | null;
  now: string;
  values: Json;
}

interface Check {
  check: string;
  value: string;
  ok: boolean;
}

const byName = (runs: Json[], pattern: RegExp): Json | null => runs.find((r) => pattern.test(String(r.name ?? ''))) ?? null;
const sys = (fanout: Json | null, system: string): Json | null => arr(fanout?.results).find((r) => r.system === system) ?? null;

function buildRows(results: Record<string, Json | null>): { rows: Row[]; checks: Check[] } {
  const rows: Row[] = [];
  const checks: Check[] = [];
  const add = (r: Omit<Row, 'met'> & { met?: boolean | null }) => rows.push({ met: null, ...r });

  // send, saturated
  const send = results.send ?? null;
  const sendRuns = arr(send?.results);
  const echo = byName(sendRuns, /echo|baseline/i) ?? sendRuns[0] ?? null;
  const sent = byName(sendRuns, /send/i) ?? sendRuns[1] ?? null;
  const sendRatio = div(num(sent?.reqPerSec), num(echo?.reqPerSec));
  add({
    row: 'send, saturated: ours / Fastify JSON echo',
    ours: `${fmt(num(sent?.reqPerSec))} msg/s, ${fmt(num(sent?.serverCpuUsPerReq))} us CPU/msg`,
    baseline: `${fmt(num(echo?.reqPerSec))} req/s, ${fmt(num(echo?.serverCpuUsPerReq))} us CPU/req`,
    ratio: pct(sendRatio),
    target: '>= 50 %',
    met: sendRatio === null ? null : sendRatio >= 0.5,
    now: '17 % (235 us CPU/msg)',
    values: { sendPerS: num(sent?.reqPerSec), echoPerS: num(echo?.reqPerSec), sendCpuUs: num(sent?.serverCpuUsPerReq), echoCpuUs: num(echo?.serverCpuUsPerReq), ratio: sendRatio },
  });
  const accepted = num(get(send, 'summary', 'accepted'));
  const stored = num(get(send, 'summary', 'stored'));
  checks.push({ check: 'send bench: accepted = stored', value: `${fmt(accepted)} accepted, ${fmt(stored)} stored`, ok: accepted !== null && stored !== null && stored >= accepted });

  // send at 200 msg/s, from the fan-out run's per-process CPU: every process but the connector and Redis.
  const fanout = results.fanout ?? null;
  const ours = sys(fanout, 'ours');
  const bili = sys(fanout, 'bili');
  const plain = sys(fanout, 'baseline');
  const pipelineCpu = Object.entries(obj(ours?.cpuByProcess) ?? {})
    .filter(([name]) => !/connector|redis/i.test(name))
    .reduce<number | null>((n, [, v]) => (num(v) === null ? n : (n ?? 0) + (v as number)), null);
  const sentAt200 = num(ours?.sent);
  const perMsgUs = pipelineCpu === null || !sentAt200 ? null : (pipelineCpu / sentAt200) * 1e6;
  add({
    row: `send at ${fmt(num(fanout?.rate))} msg/s: server CPU per message (front + processor + pusher)`,
    ours: `${fmt(perMsgUs)} us/msg (${fmt(pipelineCpu, 2)} CPU s / ${fmt(sentAt200)} msgs)`,
    baseline: '-',
    ratio: '-',
    target: '<= 300 us',
    met: perMsgUs === null ? null : perMsgUs <= 300,
    now: 'about 1.9 ms',
    values: { cpuSeconds: pipelineCpu, sent: sentAt200, usPerMessage: perMsgUs },
  });

  // polls: server CPU per request, Redis's share included (what a poll really costs the system).
  const poll = results.poll ?? null;
  const pollRuns = arr(poll?.results);
  const hello = byName(pollRuns, /hello|baseline/i) ?? pollRuns[0] ?? null;
  const cached = byName(pollRuns, /cache/i) ?? pollRuns[1] ?? null;
  const uncached = byName(pollRuns, /small|uncached|\(Redis\)/i) ?? pollRuns[2] ?? null;
  const cost = (r: Json | null): number | null => (num(r?.serverCpuUsPerReq) === null ? null : (num(r?.serverCpuUsPerReq) as number) + (num(r?.redisCpuUsPerReq) ?? 0));
  const cachedVsHello = div(cost(hello), cost(cached));
  const cachedVsUncached = div(cost(uncached), cost(cached));
  const pollDesc = (r: Json | null) => `${fmt(num(r?.reqPerSec))} req/s, ${fmt(cost(r))} us CPU/req`;
  add({
    row: 'cached poll / hello-world (CPU per request)',
    ours: pollDesc(cached),
    baseline: pollDesc(hello),
    ratio: pct(cachedVsHello),
    target: '>= 80 %',
    met: cachedVsHello === null ? null : cachedVsHello >= 0.8,
    now: '65 % (55 vs 34 us)',
    values: { cachedUs: cost(cached), helloUs: cost(hello), ratio: cachedVsHello, byReqPerS: div(num(cached?.reqPerSec), num(hello?.reqPerSec)) },
  });
  add({
    row: 'cached / uncached poll (CPU per request, Redis included)',
    ours: pollDesc(cached),
    baseline: pollDesc(uncached),
    ratio: times(cachedVsUncached),
    target: '>= 4x',
    met: cachedVsUncached === null ? null : cachedVsUncached >= 4,
    now: '2.7x',
    values: { cachedUs: cost(cached), uncachedUs: cost(uncached), ratio: cachedVsUncached, byReqPerS: div(num(cached?.reqPerSec), num(uncached?.reqPerSec)) },
  });

  // fan-out
  const perCpu = (r: Json | null) => num(r?.deliveriesPerServerCpuSecond);
  const p99 = (r: Json | null) => num(get(r, 'latencyMs', 'p99'));
  const fanDesc = (r: Json | null) => `${fmt(perCpu(r))}/CPU-s, p99 ${fmt(p99(r))} ms`;
  for (const [label, r] of [
    ['socket.io', ours],
    ['Bilibili protocol', bili],
  ] as const) {
    add({
      row: `fan-out, deliveries per server CPU-second (${label})`,
      ours: fanDesc(r),
      baseline: `plain socket.io ${fanDesc(plain)}`,
      ratio: times(div(perCpu(r), perCpu(plain))),
      target: '>= 2,000,000 at p99 <= 300 ms',
      met: perCpu(r) === null || p99(r) === null ? null : (perCpu(r) as number) >= 2_000_000 && (p99(r) as number) <= 300,
      now: label === 'socket.io' ? '608k' : '-',
      values: { perCpuSecond: perCpu(r), p99: p99(r), baselinePerCpuSecond: perCpu(plain) },
    });
  }
  const fanRatio = div(perCpu(ours), perCpu(plain));
  add({
    row: 'fan-out, ours / plain socket.io per server CPU-second',
    ours: fmt(perCpu(ours)),
    baseline: fmt(perCpu(plain)),
    ratio: times(fanRatio),
    target: '>= 15x',
    met: fanRatio === null ? null : fanRatio >= 15,
    now: '11x',
    values: { ratio: fanRatio },
  });
  for (const [label, r] of [
    ['ours (socket.io)', ours],
    ['ours (Bilibili)', bili],
    ['plain socket.io', plain],
  ] as const) {
    if (!r) continue;
    checks.push({ check: `fan-out ${label}: lost = 0, duplicated = 0`, value: `lost ${fmt(num(r.lost))}, duplicated ${fmt(num(r.duplicates))}`, ok: num(r.lost) === 0 && num(r.duplicates) === 0 });
  }
  if (!ours) checks.push({ check: 'fan-out: lost = 0, duplicated = 0', value: 'n/a (no result)', ok: false });

  // idle connections: KB per connection (connector RSS delta / connections), RSS after they closed.
  const conn = results.connections ?? null;
  const connRuns = arr(conn?.results);
  for (const [label, pattern, target] of [
    ['socket.io', /^(ours|socket\.?io)$/i, 8],
    ['Bilibili', /^(bili|bilibili)$/i, 4],
  ] as const) {
    const r = connRuns.find((x) => pattern.test(String(x.system ?? x.transport ?? ''))) ?? null;
    const bytes = num(r?.bytesPerConnection) ?? (num(r?.kbPerConnection) === null ? null : (num(r?.kbPerConnection) as number) * 1024);
    const kb = bytes === null ? null : bytes / 1024;
    const before = num(r?.rssBeforeBytes);
    // Whatever the connections bench calls it: a byte count measured after the clients closed.
    const closedKey = Object.keys(r ?? {}).find((k) => /close/i.test(k) && /bytes/i.test(k) && num(r?.[k]) !== null);
    const closed = closedKey ? num(r?.[closedKey]) : null;
    const after = num(r?.rssAfterBytes);
    const backNearStart = closed === null || before === null || after === null ? null : closed - before <= Math.max(20 * 1048576, 0.2 * (after - before));
    const mb = (n: number | null) => (n === null ? 'n/a' : `${Math.round(n / 1048576)} MB`);
    add({
      row: `idle connection memory, ${label} (${fmt(num(r?.joined ?? r?.clients))} connections)`,
      ours: `${fmt(kb, 1)} KB/conn, ${fmt(num(r?.connectionsPerSecond))} conn/s; RSS ${mb(before)} -> ${mb(after)}, after close ${mb(closed)}`,
      baseline: '-',
      ratio: '-',
      target: `<= ${target} KB, back near the start after close`,
      met: kb === null ? null : kb <= target && backNearStart !== false,
      now: label === 'socket.io' ? '14.9-22 KB; +200 MB after close' : '-',
      values: { kbPerConnection: kb, connectionsPerSecond: num(r?.connectionsPerSecond), rssBeforeBytes: before, rssAfterBytes: after, rssAfterCloseBytes: closed, backNearStart },
    });
  }

  // replay tiers, against the hot tier.
  const replayRuns = arr(results.replay?.runs);
  const hot = byName(replayRuns, /hot/i);
  for (const [label, pattern] of [
    ['hot (local cache)', /hot/i],
    ['warm (replay Redis)', /warm/i],
    ['cold (MySQL)', /cold/i],
  ] as const) {
    const r = byName(replayRuns, pattern);
    add({
      row: `replay, ${label}`,
      ours: `${fmt(num(r?.reqPerSec))} req/s, p99 ${fmt(num(get(r, 'latencyMs', 'p99')))} ms`,
      baseline: label.startsWith('hot') ? '-' : `hot ${fmt(num(hot?.reqPerSec))} req/s`,
      ratio: label.startsWith('hot') ? '-' : pct(div(num(r?.reqPerSec), num(hot?.reqPerSec))),
      target: '-',
      now: '-',
      values: { reqPerSec: num(r?.reqPerSec), p99: num(get(r, 'latencyMs', 'p99')) },
    });
  }

  // the live show
  const live = obj(results['live-show']?.summary);
  const cpu = obj(live?.cpu) ?? {};
  const topRoles = Object.entries(cpu)
    .map(([name, c]) => [name, num(get(c, 'percentOfCore'))] as const)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .slice(0, 3)
    .map(([name, p]) => `${name} ${fmt(p)} %`)
    .join(', ');
  add({
    row: `live show (${fmt(num(get(live, 'viewers', 'joined')))} viewers in one room, ${fmt(num(live?.rooms))} small rooms, ${fmt(num(live?.seconds))} s)`,
    ours:
      `${fmt(num(live?.deliveriesPerSecond))} deliveries/s, e2e p50/p99 ${fmt(num(get(live, 'latencyMs', 'all', 'p50')))}/${fmt(num(get(live, 'latencyMs', 'all', 'p99')))} ms, ` +
      `${fmt(num(get(live, 'polls', 'perSecond')))} polls/s, servers ${fmt(num(live?.serverCpuSeconds), 1)} CPU s (top: ${topRoles || 'n/a'})`,
    baseline: '-',
    ratio: '-',
    target: 'p99 <= 300 ms, nothing lost',
    met: live ? num(get(live, 'latencyMs', 'all', 'p99')) !== null && (num(get(live, 'latencyMs', 'all', 'p99')) as number) <= 300 && live.lost === 0 && live.duplicated === 0 : null,
    now: '-',
    values: live ?? {},
  });
  checks.push({
    check: 'live show, huge room: lost = 0, duplicated = 0; every accepted send stored',
    value: live ? `lost ${fmt(num(live.lost))}, duplicated ${fmt(num(live.duplicated))}, sends missing ${fmt(num(live.lostSends))}` : 'n/a (no result)',
    ok: Boolean(live) && live?.lost === 0 && live?.duplicated === 0 && live?.lostSends === 0,
  });
  return { rows, checks };
}

function printTable(header: string[], lines: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const l of lines) process.stdout.write(`${line(l)}\n`);
}

process.stdout.write(
  `bench suite: ${scenarios.map((s) => s.name).join(', ')}; about ${mmss(scenarios.reduce((n, s) => n + s.estimateS * 1000, 0))} expected\n` +
    `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryMB} MB, Node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}\n`,
);
const ran: Ran[] = [];
// --report: no runs, the table from the latest result of each bench (whenever it was written).
if (process.argv.includes('--report')) for (const s of scenarios) ran.push({ name: s.name, command: '(not run: --report)', exitCode: null, timedOut: false, seconds: 0, log: '', data: readResult(s.result, 0) });
else for (const [i, s] of scenarios.entries()) ran.push(await runOne(s, i));
machine.loadAverageAtEnd = loadavg().map((n) => Math.round(n * 100) / 100);
const results = Object.fromEntries(ran.map((r) => [r.name, r.data]));
const { rows, checks } = buildRows(results);
for (const r of ran) if (!r.data) checks.push({ check: `${r.name}: a result from this run`, value: r.timedOut ? 'stopped over its time' : `exit ${r.exitCode}, no result (see ${r.log})`, ok: false });
const totalS = Math.round((Date.now() - suiteStart) / 1000);

process.stdout.write(`\nbench suite, ${new Date().toISOString()}, ${mmss(totalS * 1000)} in all; load ${machine.loadAverageAtStart[0]} -> ${machine.loadAverageAtEnd[0]}\n\n`);
printTable(
  ['scenario', 'ours', 'baseline (same run)', 'ratio', 'target', 'met', 'issue\'s "now"'],
  rows.map((r) => [r.row, r.ours, r.baseline, r.ratio, r.target, r.met === null ? (r.target === '-' ? '-' : 'n/a') : r.met ? 'met' : 'NOT met', r.now]),
);
process.stdout.write('\n');
printTable(['nothing lost', 'measured', 'ok'], checks.map((c) => [c.check, c.value, c.ok ? 'ok' : 'FAILED']));
const file = writeResult('suite', {
  machine,
  startedAt: new Date(suiteStart).toISOString(),
  durationSeconds: totalS,
  scale,
  scenarios: ran.map((r) => ({ name: r.name, command: r.command, exitCode: r.exitCode, timedOut: r.timedOut, seconds: r.seconds, log: r.log, resultAt: r.data?.at ?? null })),
  rows: rows.map((r) => ({ row: r.row, ours: r.ours, baseline: r.baseline, ratio: r.ratio, target: r.target, met: r.met, now: r.now, values: r.values })),
  checks,
  allChecksOk: checks.every((c) => c.ok),
  results,
});
process.stdout.write(`\nresults: ${file} (and bench/results/suite-latest.json); logs ${logDir}\n`);
process.exit(checks.every((c) => c.ok) ? 0 : 1);
