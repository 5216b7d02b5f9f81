/**
 * `npm run bench -- topologies [--only split|cluster]`: the production topologies on real Apache
 * Kafka brokers, started as a user starts them (`npm run start:split`: one broker; `npm run
 * start:cluster`: three brokers, a Redis Cluster, every role twice). For each: comments across
 * rooms at 50/s to a socket.io and a Bilibili-protocol (TCP) viewer per room and a poller, then
 * one hot room taking 500 comments/s open-loop for 8 s; delivery p50/p99 per wire, lost and
 * duplicated, where a message's time goes (the stage breakdown from the roles' histograms), and
 * CPU per role, the brokers' JVMs included, per message.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpuSeconds } from './lib/cannon.js';
import { writeResult } from './lib/report.js';
import { freePorts, numericRooms, probeDelivery, startTopology, type ProbeResult, type RunningTopology } from '@danmaku/testkit';

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

interface TopologyResult {
  topology: string;
  spread: ProbeResult & { cpuMsPerMessage: Record<string, number> };
  hotRoom: ProbeResult & { cpuMsPerMessage: Record<string, number> };
}

async function measure(name: 'split' | 'cluster'): Promise<TopologyResult> {
  const env = await freePorts(['PORT', 'ROUTER_PORT', 'CONNECTOR_PORT', 'PROCESSOR_PORT', 'ARCHIVER_PORT', 'PUSHER_PORT', 'DANMAKU_BILI_TCP_PORT']);
  const n = (key: string, plus = 0): string => String(Number(env[key]) + plus);
  const copies = name === 'split' ? [0] : [0, 1];
  const roles: Record<string, string> = { router: n('ROUTER_PORT') };
  for (const i of copies) {
    roles[`front-${i + 1}`] = n('PORT', i);
    roles[`connector-${i + 1}`] = n('CONNECTOR_PORT', i);
    roles[`processor-${i + 1}`] = n('PROCESSOR_PORT', i * 10);
    roles[`archiver-${i + 1}`] = n('ARCHIVER_PORT', i * 10);
    roles[`pusher-${i + 1}`] = n('PUSHER_PORT', i * 10);
  }
  process.stderr.write(`${name}: starting npm run start:${name}...\n`);
  const started = Date.now();
  const topology: RunningTopology = await startTopology(name === 'split' ? 'start:split' : 'start:cluster', env, roles, name === 'split' ? ['kafka'] : ['kafka-cluster', 'redis-cluster']);
  process.stderr.write(`${name}: every role ready in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  try {
    const front = `http://127.0.0.1:${n('PORT')}`;
    const metricsUrls = Object.entries(roles)
      .filter(([role]) => /^(front|processor|connector)/.test(role))
      .map(([, port]) => `http://127.0.0.1:${port}/metrics`);
    // Warm-up: JIT, connections, group assignments.
    await probeDelivery({ frontUrl: front, rooms: numericRooms(2), rate: 20, seconds: 3, drainMs: 1000 });
    let before = cpuByRole();
    const spread = await probeDelivery({ frontUrl: front, rooms: numericRooms(10), rate: LOW_RATE, seconds: LOW_SECONDS, viewers: { socketio: 1, bilibili: 1, poll: 1 }, metricsUrls });
    const spreadCpu = cpuPerMessage(before, cpuByRole(), spread.acked);
    process.stderr.write(`${name}: ${LOW_RATE}/s over 10 rooms: socket.io p99 ${spread.wires.socketio.p99Ms} ms, Bilibili p99 ${spread.wires.bilibili.p99Ms} ms\n`);
    before = cpuByRole();
    const hotRoom = await probeDelivery({ frontUrl: front, rooms: numericRooms(1), rate: HOT_RATE, seconds: HOT_SECONDS, viewers: { socketio: 1, bilibili: 1, poll: 1 }, metricsUrls, drainMs: 5000 });
    const hotCpu = cpuPerMessage(before, cpuByRole(), hotRoom.acked);
    process.stderr.write(`${name}: hot room ${HOT_RATE}/s: socket.io p99 ${hotRoom.wires.socketio.p99Ms} ms, poll lost ${hotRoom.wires.poll.lost}\n`);
    return { topology: name, spread: { ...spread, cpuMsPerMessage: spreadCpu }, hotRoom: { ...hotRoom, cpuMsPerMessage: hotCpu } };
  } finally {
    await topology.stop();
  }
}

const results: TopologyResult[] = [];
for (const name of ['split', 'cluster'] as const) if (!only || only === name) results.push(await measure(name));

const row = (label: string, r: ProbeResult): string =>
  `| ${label} | ${r.acked}/${r.sent} | ${(['socketio', 'bilibili', 'poll'] as const).map((w) => `${r.wires[w].p50Ms}/${r.wires[w].p99Ms} ms, lost ${r.wires[w].lost}`).join(' | ')} |`;
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
