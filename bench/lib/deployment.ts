/**
 * Measures a running deployment from outside with the load tool (`bench/load.ts`, the same clients
 * a load tester points at production), and where a message's time went inside it: the stage
 * histograms every role exports, read before and after. Used by the topologies bench and the
 * topology suites.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeArgs } from '@danmaku/role/entry';
import { REPO_ROOT } from '@danmaku/testkit';
import type { LoadReport } from './load/report.js';

export interface DriveOptions {
  target: string;
  rooms: number;
  /** Viewers per room on each wire (poll, socket.io, Bilibili over TCP). */
  viewersPerRoom: number;
  rate: number;
  seconds: number;
  /** /metrics of the fronts, processors and connectors, for the stage breakdown. */
  metricsUrls: string[];
}

/** Mean ms spent in each stage of a message's way, from the roles' histograms over the run. */
export interface StageBreakdown {
  /** ts -> produce started: auth and the send checks (rate limit, words, bans) on the front. */
  frontChecks: number;
  /** produce -> acknowledged by the bus (Kafka: every in-sync replica). */
  produce: number;
  /** acknowledged -> handed to a processor (the consumer's fetch). */
  fetch: number;
  /** handed -> stored in Redis (the Lua append). */
  processorRedis: number;
  /** stored -> room announced (the signal's publish). */
  signal: number;
  /** announced -> emitted by a connector (pusher, notify, the connector's pull and merge window). */
  pushConnector: number;
  /** emitted -> in a socket.io viewer's handler, by the viewers' median (network and client). */
  toViewerP50: number;
}

export interface DriveResult {
  report: LoadReport;
  breakdown: StageBreakdown;
}

const STAGES = {
  produce: 'danmaku_ingest_produce_seconds',
  acked: 'danmaku_ingest_acked_delay_seconds',
  fetched: 'danmaku_processor_fetched_delay_seconds',
  stored: 'danmaku_processor_delay_seconds',
  announced: 'danmaku_processor_announced_delay_seconds',
  emitted: 'danmaku_connector_emit_delay_seconds',
} as const;

type Stage = keyof typeof STAGES;
type Sums = Record<Stage, { sum: number; count: number }>;

/** Sums and counts of the stage histograms over every role (all label sets added up). */
async function scrapeStages(urls: string[]): Promise<Sums> {
  const sums = Object.fromEntries(Object.keys(STAGES).map((k) => [k, { sum: 0, count: 0 }])) as Sums;
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    for (const line of text.split('\n')) {
      for (const [stage, name] of Object.entries(STAGES) as [Stage, string][]) {
        if (line.startsWith(`${name}_sum`)) sums[stage].sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        else if (line.startsWith(`${name}_count`)) sums[stage].count += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sums;
}

function breakdownOf(before: Sums, after: Sums, viewerP50Ms: number): StageBreakdown {
  const mean = (stage: Stage): number => {
    const count = after[stage].count - before[stage].count;
    return count > 0 ? ((after[stage].sum - before[stage].sum) / count) * 1000 : 0;
  };
  const at = Object.fromEntries(Object.keys(STAGES).map((s) => [s, mean(s as Stage)])) as Record<Stage, number>;
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  return {
    frontChecks: round(at.acked - at.produce),
    produce: round(at.produce),
    fetch: round(at.fetched - at.acked),
    processorRedis: round(at.stored - at.fetched),
    signal: round(at.announced - at.stored),
    pushConnector: round(at.emitted - at.announced),
    toViewerP50: round(viewerP50Ms - at.emitted),
  };
}

/** Numeric room prefixes no other run uses (the Bilibili protocol names rooms by number). */
export function numericRoomPrefix(): string {
  return String(1_000_000 + Math.floor(Math.random() * 8_000_000));
}

/** One run of the load tool against `target`; resolves with its report (whatever its exit code) and the breakdown. */
export async function driveDeployment(options: DriveOptions): Promise<DriveResult> {
  const out = mkdtempSync(join(tmpdir(), 'danmaku-drive-'));
  const transports = ['poll', 'socketio', 'bilibili-tcp'];
  const args = [
    ...nodeArgs(REPO_ROOT, 'bench/load.ts'),
    '--target', options.target,
    '--rooms', String(options.rooms),
    '--room-prefix', numericRoomPrefix(),
    '--viewers', String(options.rooms * options.viewersPerRoom * transports.length),
    '--transports', transports.join(','),
    '--rate', String(options.rate),
    '--seconds', String(options.seconds),
    '--drain-seconds', '10',
    '--out', out,
  ];
  try {
    const before = await scrapeStages(options.metricsUrls);
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8000)));
    child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-8000)));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    let report: LoadReport;
    try {
      report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as LoadReport;
    } catch {
      throw new Error(`the load tool wrote no report (exit ${code}):\n${output}`);
    }
    const after = await scrapeStages(options.metricsUrls);
    return { report, breakdown: breakdownOf(before, after, report.transports.socketio?.p50Ms ?? 0) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
