/**
 * `npm run bench -- topologies [--only split|cluster]`: the production topologies on real Apache
 * Kafka brokers, started as a user starts them (`npm run start:split`: one broker; `npm run
 * start:cluster`: three brokers, a Redis Cluster, every role twice), and drives each with the load
 * tool (`npm run load`): comments across 10 rooms at 50/s to a socket.io viewer, a Bilibili TCP
 * viewer and a poller per room, then one hot room taking 500 comments/s open-loop for 8 s.
 * Delivery p50/p99 per wire, lost and duplicated, where a message's time goes (the stage
 * breakdown from the roles' histograms), and CPU per role, the brokers' JVMs included, per message.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpuSeconds } from './lib/cannon.js';
import { writeResult } from './lib/report.js';
import { TOPOLOGY_PORTS, freePorts, startTopology, topologyRoles, type RunningTopology } from '@danmaku/testkit';
import { driveDeployment, type DriveResult } from './lib/deployment.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const LOW_RATE = 50;
const LOW_SECONDS = 10;
const HOT_RATE = 500;
const HOT_SECONDS = 8;

/** The role or broker a process is, from its command line; null for anything else. */
function roleOf(cmdline: string): string | null {
  const role = /apps\/(\w+)\/src\/main\.ts/.exec(cmdline);
  if (role) return role[1] as string;
  if (cmdline.includes('kafka.Kafka') && cmdline.includes('.run/kafka')) return 'kafka (JVM)';
  if (/redis-server .*:1700\d/.test(cmdline)) return 'redis-cluster';
  if (/redis-server .*:16379/.test(cmdline)) return 'redis';
  return null;
}

/** CPU seconds used so far by every role and broker process, by role (several processes add up). */
function cpuByRole(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue; // gone meanwhile
    }
    const role = roleOf(cmdline);
    const seconds = role ? cpuSeconds(Number(pid)) : null;
    if (role && seconds !== null) out.set(role, (out.get(role) ?? 0) + seconds);
  }
  return out;
}

/** CPU ms per message by role between two snapshots. */
function cpuPerMessage(before: Map<string, number>, after: Map<string, number>, messages: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [role, seconds] of after) {
    const ms = (seconds - (before.get(role) ?? 0)) * 1000;
    out[role] = Math.round((ms / messages) * 1000) / 1000;
    total += ms;
  }
  out.total = Math.round((total / messages) * 1000) / 1000;
  return out;
}

/** What the suite reads of one load run: per wire, the stage breakdown, CPU per message. */
interface RunSummary {
  sent: number;
  acked: number;
  wires: Record<string, { viewers: number; expected: number; delivered: number; lost: number; duplicated: number; p50Ms: number | null; p90Ms: number | null; p99Ms: number | null }>;
  breakdown: DriveResult['breakdown'];
  cpuMsPerMessage: Record<string, number>;
}

interface TopologyResult {
  topology: string;
  spread: RunSummary;
  hotRoom: RunSummary;
}

function summary(run: DriveResult, cpu: Record<string, number>): RunSummary {
  const wires: RunSummary['wires'] = {};
  for (const [name, t] of Object.entries(run.report.transports)) {
    // The suite's rows name the wires as before: socketio, bilibili (TCP), poll.
    wires[name === 'bilibili-tcp' ? 'bilibili' : name] = { viewers: t.viewers, expected: t.expected, delivered: t.delivered, lost: t.lost, duplicated: t.duplicated, p50Ms: t.p50Ms, p90Ms: t.p90Ms, p99Ms: t.p99Ms };
  }
  return { sent: run.report.sent, acked: run.report.acked, wires, breakdown: run.breakdown, cpuMsPerMessage: cpu };
}

async function measure(name: 'split' | 'cluster'): Promise<TopologyResult> {
  const env = await freePorts(TOPOLOGY_PORTS);
  const n = (key: string, plus = 0): string => String(Number(env[key]) + plus);
  const copies = name === 'split' ? [0] : [0, 1];
  const roles = topologyRoles(env, name === 'split' ? 1 : 2);
  process.stderr.write(`${name}: starting npm run start:${name}...\n`);
  const started = Date.now();
  const topology: RunningTopology = await startTopology(name === 'split' ? 'start:split' : 'start:cluster', env, roles, name === 'split' ? ['kafka'] : ['kafka-cluster', 'redis-cluster']);
  process.stderr.write(`${name}: every role ready in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  try {
    const front = `http://127.0.0.1:${n('PORT')}`;
    const metricsUrls = Object.entries(roles)
      .filter(([role]) => /^(front|processor|connector)/.test(role))
      .map(([, port]) => `http://127.0.0.1:${port}/metrics`);
    const viewersPerRoom = copies.length;
    // Warm-up: JIT, connections, group assignments.
    await driveDeployment({ target: front, rooms: 2, viewersPerRoom: 1, rate: 20, seconds: 3, metricsUrls });
    let before = cpuByRole();
    const spread = await driveDeployment({ target: front, rooms: 10, viewersPerRoom, rate: LOW_RATE, seconds: LOW_SECONDS, metricsUrls });
    const spreadSummary = summary(spread, cpuPerMessage(before, cpuByRole(), spread.report.acked));
    process.stderr.write(`${name}: ${LOW_RATE}/s over 10 rooms: socket.io p99 ${spreadSummary.wires.socketio?.p99Ms} ms, Bilibili p99 ${spreadSummary.wires.bilibili?.p99Ms} ms\n`);
    before = cpuByRole();
    const hot = await driveDeployment({ target: front, rooms: 1, viewersPerRoom, rate: HOT_RATE, seconds: HOT_SECONDS, metricsUrls });
    const hotSummary = summary(hot, cpuPerMessage(before, cpuByRole(), hot.report.acked));
    process.stderr.write(`${name}: hot room ${HOT_RATE}/s: socket.io p99 ${hotSummary.wires.socketio?.p99Ms} ms, poll lost ${hotSummary.wires.poll?.lost}\n`);
    return { topology: name, spread: spreadSummary, hotRoom: hotSummary };
  } finally {
    await topology.stop();
  }
}

const results: TopologyResult[] = [];
for (const name of ['split', 'cluster'] as const) if (!only || only === name) results.push(await measure(name));

const row = (label: string, r: RunSummary): string =>
  `| ${label} | ${r.acked}/${r.sent} | ${['socketio', 'bilibili', 'poll'].map((w) => `${r.wires[w]?.p50Ms}/${r.wires[w]?.p99Ms} ms, lost ${r.wires[w]?.lost}`).join(' | ')} |`;
process.stdout.write(`\n| topology, load | acked | socket.io p50/p99 | Bilibili TCP p50/p99 | poll p50/p99 |\n|---|---|---|---|---|---|\n`);
for (const r of results) {
  process.stdout.write(`${row(`${r.topology}, ${LOW_RATE}/s over 10 rooms`, r.spread)}\n${row(`${r.topology}, hot room ${HOT_RATE}/s`, r.hotRoom)}\n`);
}
process.stdout.write('\nwhere the time goes (mean ms per stage), and server CPU ms per message by role:\n');
for (const r of results) {
  for (const [label, p] of [[`${r.topology} ${LOW_RATE}/s`, r.spread], [`${r.topology} hot room`, r.hotRoom]] as const) {
    process.stdout.write(`${label}: ${JSON.stringify(p.breakdown)}\n  CPU ${JSON.stringify(p.cpuMsPerMessage)}\n`);
  }
}
const path = writeResult('topologies', { lowRate: LOW_RATE, hotRate: HOT_RATE, hotSeconds: HOT_SECONDS, results });
process.stdout.write(`\nwrote ${path}\n`);
process.exit(0);
