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
import { SOURCE_FLAGS } from '@danmaku/role/entry';
import { REPO_ROOT } from '@danmaku/testkit';
import { writeResult } from './lib/report.js';
import { buildRows, printTable } from './lib/suite.js';

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
const ALL: Scenario[] = [
  { name: 'send', result: 'send', args: ['bench/send.ts'], env: { BENCH_DURATION_S: secs(8) }, estimateS: 40 },
  { name: 'send-low', result: 'send-low', args: ['bench/send-low.ts'], env: {}, estimateS: 100 },
  { name: 'poll', result: 'poll', args: ['bench/poll.ts'], env: { BENCH_DURATION_S: secs(5), BENCH_ROUNDS: '2' }, estimateS: 60 },
  { name: 'fanout', result: 'fanout', args: ['bench/fanout.ts', '--seconds', secs(10), '--drain', '20'], env: {}, estimateS: 260 },
  // Three wires (socket.io, Bilibili over WebSocket and over TCP), a warm-up crowd, 30 s to settle after each.
  { name: 'connections', result: 'connections', args: ['bench/connections.ts', '--clients', '10000'], env: {}, estimateS: 210 },
  { name: 'replay', result: 'replay', args: ['bench/replay.ts'], env: { BENCH_DURATION_S: secs(5) }, estimateS: 60 },
  { name: 'live-show', result: 'live-show', args: ['bench/live-show.ts', '--seconds', secs(60)], env: {}, estimateS: 150 },
  // start:split (one broker) and start:cluster (three brokers, a Redis Cluster) as users start them.
  { name: 'topologies', result: 'topologies', args: ['bench/topologies.ts'], env: {}, estimateS: 180 },
  // Measures nothing: the capacity model (bench/RESULTS.md) from the results above.
  { name: 'capacity', result: 'capacity', args: ['bench/capacity.ts'], env: {}, estimateS: 5 },
];
const only = (process.env.BENCH_SUITE_ONLY ?? '').split(',').filter(Boolean);
const scenarios = (only.length ? ALL.filter((s) => only.includes(s.name)) : ALL).filter((s) => existsSync(join(REPO_ROOT, s.args[0] as string)));

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
  const command = `${Object.entries(s.env).map(([k, v]) => `${k}=${v} `).join('')}node ${SOURCE_FLAGS.join(' ')} ${s.args.join(' ')}`;
  out.write(`$ ${command}\n`);
  // Its own process group, so a run over its time is stopped with every server it started.
  const child = spawn(process.execPath, [...SOURCE_FLAGS, ...s.args], { cwd: REPO_ROOT, env: { ...process.env, ...s.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
