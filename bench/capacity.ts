/**
 * npm run bench -- capacity: the capacity model of bench/RESULTS.md, computed from the per-core figures the
 * other benches measured (bench/results/NAME-latest.json of send, send-low, poll, fanout,
 * connections, live-show). It measures nothing itself; run the suite (`npm run bench`) first.
 *
 * The workload is the Meipai peak: 1,000,000 concurrent viewers in 30,000 rooms, one of them with
 * 500,000; every figure that is an assumption rather than a measurement is a knob and is printed.
 * For each component it prints the work per second, the cost per unit (measured), the cores that
 * work needs, and the machines or shards at the target utilisation, once with every viewer polling
 * every 2 s and once with every viewer on a long connection; then the per-room ceilings (what a
 * single Redis shard, partition or connector can carry for the one huge room) and which component
 * saturates first. The huge room on long connections is shown three ways: unthrottled, sampled by
 * the bigRoomSampleRatio switch, and self-throttled by each connector's DANMAKU_ROOM_DELIVERY_BUDGET
 * (`--deliveryBudget`, the setting's default unless given). Writes bench/results/capacity-latest.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SETTINGS } from '@danmaku/config';
import { BUDGET_TARGET } from '@danmaku/connector';
import { REPO_ROOT } from '@danmaku/testkit';
import { writeResult } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    viewers: { type: 'string', default: '1000000' },
    rooms: { type: 'string', default: '30000' },
    huge: { type: 'string', default: '500000' },
    pollS: { type: 'string', default: '2' },
    // Sends are not in the Meipai figures: 2,000 comments/s offered to the huge room (0.4 % of its
    // viewers each second) and 5 per 1,000 viewers per second elsewhere.
    hugeSendRate: { type: 'string', default: '2000' },
    smallSendPerThousand: { type: 'string', default: '5' },
    // Cores of one machine, memory of a connector machine, and the share of a core we plan to use.
    machineCores: { type: 'string', default: '16' },
    connectorMemGB: { type: 'string', default: '32' },
    utilisation: { type: 'string', default: '0.6' },
    bigMergeMs: { type: 'string', default: '200' },
    // What one viewer's screen can show of the huge room: polls sample to
    // DANMAKU_BIG_ROOM_POLL_LIMIT (50) per 2 s poll; long connections keep the share the
    // bigRoomSampleRatio switch says, here displayCap / hugeSendRate.
    displayCap: { type: 'string', default: '50' },
    // DANMAKU_ROOM_DELIVERY_BUDGET: deliveries/s one connector spends on one room before it samples it.
    deliveryBudget: { type: 'string', default: SETTINGS.roomDeliveryBudget.default },
  },
});

type Json = Record<string, unknown>;
const read = (name: string): Json | null => {
  const path = join(REPO_ROOT, 'bench', 'results', `${name}-latest.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Json) : null;
};
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const get = (v: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), v);
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const byName = (runs: Json[], pattern: RegExp): Json | undefined => runs.find((r) => pattern.test(String(r.name ?? r.system ?? '')));

const missing: string[] = [];
/** A measured figure, or a note that it is missing (the model then cannot be computed). */
function need(what: string, value: number | null): number {
  if (value === null || value <= 0) {
    missing.push(what);
    return NaN;
  }
  return value;
}

const send = read('send');
const sendLow = read('send-low');
const poll = read('poll');
const fanout = read('fanout');
const connections = read('connections');
const liveShow = read('live-show');

// Measured per-unit costs, in CPU microseconds (one core for one microsecond).
const sendRun = byName(list(send?.results), /send/i);
const pipelineUsPerMessage = need('send: server CPU per message, saturated', num(sendRun?.serverCpuUsPerReq));
const redisUsPerMessage = need('send-low: Redis CPU per message', num(get(sendLow, 'summary', 'redisUsPerMessage')));
const redisCommandsPerMessage = num(get(sendLow, 'summary', 'redisCommandsPerMessage'));
const pollRuns = list(poll?.results);
const cachedPoll = byName(pollRuns, /cache/i);
const uncachedPoll = byName(pollRuns, /small|Redis\)/i);
const cachedPollUs = need('poll: cached poll CPU', num(cachedPoll?.serverCpuUsPerReq));
const uncachedPollUs = need('poll: uncached poll CPU', num(uncachedPoll?.serverCpuUsPerReq));
const uncachedPollRedisUs = need('poll: Redis CPU per uncached poll', num(uncachedPoll?.redisCpuUsPerReq) ?? null);
const fanOurs = list(fanout?.results).find((r) => r.system === 'ours');
const fanBili = list(fanout?.results).find((r) => r.system === 'bili');
const connectorCpu = (r: Json | undefined): number | null => num(get(r, 'cpuByProcess', 'connector'));
const usPerDelivery = (r: Json | undefined): number | null => {
  const cpu = connectorCpu(r);
  const deliveries = num(r?.deliveries);
  return cpu === null || !deliveries ? null : (cpu * 1e6) / deliveries;
};
const usPerPacket = (r: Json | undefined): number | null => {
  const cpu = connectorCpu(r);
  const packets = num(r?.packets);
  return cpu === null || !packets ? null : (cpu * 1e6) / packets;
};
const deliveryUs = need('fanout: connector CPU per delivery (socket.io)', usPerDelivery(fanOurs));
const deliveryUsBili = usPerDelivery(fanBili);
const packetUs = need('fanout: connector CPU per packet write (socket.io)', usPerPacket(fanOurs));
const measuredMessagesPerPacket = num(fanOurs?.messagesPerPacket);
const connRuns = list(connections?.results);
const bytesPerConnSio = need('connections: bytes per socket.io connection', num(byName(connRuns, /^ours$/)?.bytesPerConnection));
const bytesPerConnBili = num(byName(connRuns, /^bili$/)?.bytesPerConnection);

// The processor's share of the pipeline, from the live show's per-role CPU (its roles are separate processes).
const liveCpu = (get(liveShow, 'summary', 'cpu') ?? {}) as Record<string, { cpuSeconds?: number }>;
const roleCpu = (pattern: RegExp): number => Object.entries(liveCpu).filter(([name]) => pattern.test(name)).reduce((n, [, c]) => n + (num(c.cpuSeconds) ?? 0), 0);
const liveStored = (num(get(liveShow, 'summary', 'sends', 'huge', 'stored')) ?? 0) + (num(get(liveShow, 'summary', 'sends', 'small', 'stored')) ?? 0);
const processorUsPerMessage = liveStored > 0 && roleCpu(/^processor/) > 0 ? (roleCpu(/^processor/) * 1e6) / liveStored : null;

if (missing.length > 0) {
  process.stderr.write(`capacity: missing measurements (run \`npm run bench\` first):\n  ${missing.join('\n  ')}\n`);
  process.exit(1);
}

// The workload.
const viewers = Number(args.viewers);
const rooms = Number(args.rooms);
const huge = Number(args.huge);
const pollS = Number(args.pollS);
const hugeSendRate = Number(args.hugeSendRate);
const otherViewers = viewers - huge;
const smallSendRate = (otherViewers / 1000) * Number(args.smallSendPerThousand);
const sends = hugeSendRate + smallSendRate;
const coresPerMachine = Number(args.machineCores);
const util = Number(args.utilisation);
const bigMergeMs = Number(args.bigMergeMs);
const usableCores = coresPerMachine * util;

interface Line {
  component: string;
  work: string;
  cost: string;
  cores: number;
  provision: string;
}
const round = (n: number, d = 0): number => Math.round(n * 10 ** d) / 10 ** d;
const k = (n: number): string => (n >= 1e9 ? `${round(n / 1e9, 2)}G` : n >= 1e6 ? `${round(n / 1e6, 2)}M` : n >= 1e3 ? `${round(n / 1e3, 1)}k` : String(round(n, 1)));
const machines = (cores: number): string => `${Math.max(1, Math.ceil(cores / usableCores))} x ${coresPerMachine}-core`;

// Every viewer polls every pollS seconds; the huge room is served from the fronts' local cache,
// the other rooms (about 17 viewers each) are each one Redis read.
const hugePolls = huge / pollS;
const otherPolls = otherViewers / pollS;
const pipelineCores = (sends * pipelineUsPerMessage) / 1e6;
const pollFrontCores = (hugePolls * cachedPollUs + otherPolls * uncachedPollUs) / 1e6;
const pollRedisCores = (otherPolls * uncachedPollRedisUs + sends * redisUsPerMessage) / 1e6;
const redisShardsPoll = Math.ceil(pollRedisCores / util);
const polling: Line[] = [
  { component: 'fronts: polls', work: `${k(hugePolls)} cached + ${k(otherPolls)} uncached polls/s`, cost: `${cachedPollUs} / ${uncachedPollUs} us`, cores: pollFrontCores, provision: machines(pollFrontCores + pipelineCores) + ' (with the sends below)' },
  { component: 'send pipeline (front, processor, archiver, pusher)', work: `${k(sends)} msgs/s`, cost: `${round(pipelineUsPerMessage)} us/msg`, cores: pipelineCores, provision: 'on the front machines' },
  { component: 'Redis', work: `${k(otherPolls)} reads/s + ${k(sends)} msgs/s (${redisCommandsPerMessage ?? 'n/a'} commands each)`, cost: `${uncachedPollRedisUs} us/read, ${redisUsPerMessage} us/msg`, cores: pollRedisCores, provision: `${redisShardsPoll} shards (primaries; x2 with replicas)` },
];

// Every viewer on a long connection. The huge room is a broadcast room: each viewer gets one
// packet per big merge window holding every message of that window.
const packetsPerViewerPerS = 1000 / bigMergeMs;
const hugeDeliveries = huge * hugeSendRate;
const otherDeliveries = smallSendRate * (otherViewers / (rooms - 1));
const deliveries = hugeDeliveries + otherDeliveries;
const hugePackets = huge * packetsPerViewerPerS;
const connectorCoresByDelivery = (deliveries * deliveryUs) / 1e6;
const connectorCoresByPacket = ((hugePackets + otherDeliveries) * packetUs) / 1e6;
const memGB = (viewers * bytesPerConnSio) / 1024 ** 3;
const connectorsByMemory = Math.ceil(memGB / Number(args.connectorMemGB));
const connectorsByCpu = Math.ceil(connectorCoresByDelivery / usableCores);
const pushRedisCores = (sends * redisUsPerMessage) / 1e6;
// The huge room thinned by the sample switch to displayCap msgs/s per viewer: as many packets,
// each smaller. One measured point (a packet of the fan-out bench's size) cannot split a packet's
// cost into its fixed part and its per-message part, so the cost is a range: every microsecond
// per message (the low end) or every microsecond per packet (the high end).
const sampleRatio = Math.min(1, Number(args.displayCap) / hugeSendRate);
const sampledHugeDeliveries = huge * Math.min(hugeSendRate, Number(args.displayCap));
const sampledCoresLow = ((sampledHugeDeliveries + otherDeliveries) * deliveryUs) / 1e6;
const sampledCoresHigh = Math.max(sampledCoresLow, ((hugePackets + otherDeliveries) * packetUs) / 1e6);
// The huge room as the connectors throttle it by themselves (DANMAKU_ROOM_DELIVERY_BUDGET): each
// connector process (one per core: Node runs a connector on one) spends at most BUDGET_TARGET x
// budget deliveries/s on one room, however many of its viewers it holds and whatever the room's
// rate. The uid hash spreads the huge room's viewers over every connector, so the room costs each
// at most that cap: the huge room gets processes x cap deliveries/s, and the machines are as many
// as memory, the other rooms and the packets need. The cost per packet (the high end) is not
// capped by the budget: a viewer still gets a packet per merge window while messages come.
const deliveryBudget = Number(args.deliveryBudget);
const roomCap = deliveryBudget * BUDGET_TARGET;
function selfThrottled(machinesCount: number) {
  const processes = machinesCount * coresPerMachine;
  const hugeDeliveriesNow = deliveryBudget > 0 ? Math.min(hugeDeliveries, processes * roomCap) : hugeDeliveries;
  const perViewer = hugeDeliveriesNow / huge;
  const low = ((hugeDeliveriesNow + otherDeliveries) * deliveryUs) / 1e6;
  // A packet carries at least one message: per viewer, no more packets than merge windows or messages.
  const high = Math.max(low, ((huge * Math.min(packetsPerViewerPerS, perViewer) + otherDeliveries) * packetUs) / 1e6);
  return { machines: machinesCount, processes, hugeDeliveries: hugeDeliveriesNow, perViewer, low, high };
}
let budgeted = selfThrottled(Math.max(1, connectorsByMemory));
while (budgeted.high > budgeted.machines * usableCores && budgeted.machines < 100_000) budgeted = selfThrottled(budgeted.machines + 1);
const budgetLine: Line = {
  component: `connectors: deliveries, huge room self-throttled (DANMAKU_ROOM_DELIVERY_BUDGET ${k(deliveryBudget)} per connector process)`,
  work: `${k(budgeted.hugeDeliveries + otherDeliveries)} deliveries/s (the huge room ${k(budgeted.hugeDeliveries)}: ${round(budgeted.perViewer, 1)} of ${k(hugeSendRate)} msgs/s per viewer over ${budgeted.processes} connector processes)`,
  cost: `${round(deliveryUs, 3)} us/delivery .. ${round(packetUs, 1)} us/packet`,
  cores: budgeted.high,
  provision: `${budgeted.machines} x ${coresPerMachine}-core (${round(budgeted.low)}-${round(budgeted.high)} cores; the huge room at most ${round((roomCap * deliveryUs) / 1e6, 2)} cores by deliveries on each process)`,
};

const longConn: Line[] = [
  {
    component: 'connectors: deliveries',
    work: `${k(deliveries)} deliveries/s (${k(hugeDeliveries)} in the huge room, ${round(hugeSendRate * (bigMergeMs / 1000))} msgs per packet)`,
    cost: `${round(deliveryUs, 3)} us/delivery (${measuredMessagesPerPacket ?? 'n/a'} msgs/packet measured); ${round(packetUs, 1)} us/packet`,
    cores: connectorCoresByDelivery,
    provision: `${connectorsByCpu} x ${coresPerMachine}-core by CPU (by packets alone: ${round(connectorCoresByPacket)} cores)`,
  },
  {
    component: `connectors: deliveries, huge room sampled (bigRoomSampleRatio ${round(sampleRatio, 3)})`,
    work: `${k(sampledHugeDeliveries + otherDeliveries)} deliveries/s (${round(Math.min(hugeSendRate, Number(args.displayCap)) * (bigMergeMs / 1000))} msgs per packet in the huge room)`,
    cost: `${round(deliveryUs, 3)} us/delivery .. ${round(packetUs, 1)} us/packet`,
    cores: sampledCoresHigh,
    provision: `${Math.ceil(sampledCoresHigh / usableCores)} x ${coresPerMachine}-core (${round(sampledCoresLow)}-${round(sampledCoresHigh)} cores)`,
  },
  budgetLine,
  { component: 'connectors: memory', work: `${k(viewers)} idle connections`, cost: `${round(bytesPerConnSio / 1024, 1)} KB/conn (Bilibili ${bytesPerConnBili === null ? 'n/a' : round(bytesPerConnBili / 1024, 1)} KB)`, cores: 0, provision: `${round(memGB, 1)} GB: ${connectorsByMemory} x ${args.connectorMemGB} GB` },
  { component: 'send pipeline (front, processor, archiver, pusher)', work: `${k(sends)} msgs/s`, cost: `${round(pipelineUsPerMessage)} us/msg`, cores: pipelineCores, provision: machines(pipelineCores) },
  { component: 'Redis', work: `${k(sends)} msgs/s`, cost: `${redisUsPerMessage} us/msg`, cores: pushRedisCores, provision: `${Math.max(1, Math.ceil(pushRedisCores / util))} shards` },
];

// Per-room ceilings: a room's (room, type) keys live on one Redis shard, a gear-1 stream on one
// partition, and each of its messages is written once per viewer.
const hugeRoomRedisCeiling = (1e6 * util) / redisUsPerMessage;
// A busy partition's processor batches, so its cost per message is at most the whole saturated
// pipeline's (front and archiver included); the live show's figure is the same work one message
// at a time, idle polling of the bus included: what a quiet partition costs, not its ceiling.
const partitionCeiling = (1e6 * util) / pipelineUsPerMessage;
const partitions = Math.max(8, Math.ceil((sends / partitionCeiling) * 2));

function table(title: string, lines: Line[]): string {
  return [
    `\n${title}`,
    '| component | work per second | cost per unit (measured) | cores | provision |',
    '|---|---|---|---|---|',
    ...lines.map((l) => `| ${l.component} | ${l.work} | ${l.cost} | ${round(l.cores, 1)} | ${l.provision} |`),
  ].join('\n');
}

// As load grows evenly, the provisioned component with the least headroom saturates first.
const frontMachines = Math.max(1, Math.ceil((pollFrontCores + pipelineCores) / usableCores));
const pollUtil = { fronts: (pollFrontCores + pipelineCores) / (frontMachines * coresPerMachine), Redis: pollRedisCores / redisShardsPoll };
const firstPoll = Object.entries(pollUtil).sort((a, b) => b[1] - a[1]).map(([name, u]) => `${name} ${Math.round(u * 100)} %`).join(', then ');
const out = [
  `capacity model: ${k(viewers)} viewers in ${k(rooms)} rooms, one of ${k(huge)}; polls every ${pollS} s; ${k(hugeSendRate)} msgs/s into the huge room, ${k(smallSendRate)} msgs/s over the others; machines of ${coresPerMachine} cores at ${util * 100} %`,
  table(`Every viewer polling every ${pollS} s`, polling),
  table('Every viewer on a long connection', longConn),
  '',
  'Per-room ceilings (the huge room):',
  `- its Redis shard (one key per type): ${k(hugeRoomRedisCeiling)} msgs/s at ${util * 100} % of that shard (${redisUsPerMessage} us of Redis per message)`,
  `- one partition's processor (gear 1: one stream, serial): at least ${k(partitionCeiling)} msgs/s (the saturated pipeline's ${round(pipelineUsPerMessage)} us per message bounds it); gear 2 spreads a stream over DANMAKU_GEAR_SPREAD partitions. At low rates the live show's processor spent ${processorUsPerMessage === null ? 'n/a' : round(processorUsPerMessage)} us per message, mostly waking for each one`,
  `- Kafka partitions for ${k(sends)} msgs/s with 2x headroom: ${partitions} (at least 8, the default topic)`,
  `- long connections: ${k(hugeDeliveries)} deliveries/s in the huge room alone need ${round((hugeDeliveries * deliveryUs) / 1e6)} connector cores (${round((hugePackets * packetUs) / 1e6)} if a packet's cost did not grow with its messages); Bilibili transport ${deliveryUsBili === null ? 'n/a' : `${round((hugeDeliveries * deliveryUsBili) / 1e6)} cores`}`,
  `- self-throttled: each connector process spends at most ${Math.round(BUDGET_TARGET * 100)} % of DANMAKU_ROOM_DELIVERY_BUDGET (${k(deliveryBudget)}) deliveries/s on one room, so by deliveries the huge room costs a process at most ${round((roomCap * deliveryUs) / 1e6, 2)} cores however fast it goes; over ${budgeted.processes} processes (${budgeted.machines} machines: memory, the other rooms and the packets) it gets ${k(budgeted.hugeDeliveries)} deliveries/s, ${round(budgeted.perViewer, 1)} of its ${k(hugeSendRate)} msgs/s per viewer (comments sampled by seq, gifts and notices whole), for ${round(budgeted.low)}-${round(budgeted.high)} connector cores instead of ${round(connectorCoresByDelivery)}. The budget caps messages, not packets: the high end is a packet per viewer per merge window. More processes or a larger budget show each viewer more of the room, for proportionally more cores`,
  `- sampled to ${args.displayCap} msgs/s per viewer (the bigRoomSampleRatio switch at ${round(sampleRatio, 3)}: polls and long connections keep the same comments, gifts whole), the connectors need ${round(sampledCoresLow)}-${round(sampledCoresHigh)} cores in all`,
  '',
  `Saturates first (busiest after provisioning): polling: ${firstPoll}; long connections: the connectors' deliveries in the huge room (${connectorsByCpu} machines by CPU vs ${connectorsByMemory} by memory; sampled, ${Math.ceil(sampledCoresHigh / usableCores)} by CPU; self-throttled, ${budgeted.machines} by CPU and memory).`,
].join('\n');
process.stdout.write(out + '\n');
process.stdout.write(
  `results: ${writeResult('capacity', {
    workload: { viewers, rooms, huge, pollS, hugeSendRate, smallSendRate, coresPerMachine, utilisation: util, bigMergeMs },
    measured: { pipelineUsPerMessage, redisUsPerMessage, redisCommandsPerMessage, cachedPollUs, uncachedPollUs, uncachedPollRedisUs, deliveryUs, deliveryUsBili, packetUs, bytesPerConnSio, bytesPerConnBili, processorUsPerMessage },
    polling,
    longConnections: longConn,
    ceilings: { hugeRoomRedisCeiling, partitionCeiling, partitions },
    sampled: { sampleRatio, deliveriesPerS: sampledHugeDeliveries + otherDeliveries, connectorCoresLow: sampledCoresLow, connectorCoresHigh: sampledCoresHigh },
    selfThrottled: { deliveryBudget, budgetTarget: BUDGET_TARGET, ...budgeted },
    text: out,
  })}\n`,
);
