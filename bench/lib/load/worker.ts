/**
 * One client process of the load tool (forked by bench/load.ts): its share of the viewers and
 * senders. Reports every second over IPC; at the end, per viewer, what it was owed and got.
 */
import { biliTcpViewer, biliWsViewer, httpAgent, pollViewer, sendComment, socketioViewer, type AnyAgent, type Received, type Transport, type Viewer, type ViewerEvents } from './clients.js';
import type { FromWorker, SenderTick, ToWorker, TransportTick, ViewerTotals } from './protocol.js';
import type { SenderSpec, ViewerSpec } from './plan.js';
import { Histogram, SeqSet } from './stats.js';

interface ViewerState {
  spec: ViewerSpec;
  /** Local clock when it became ready; Infinity until then. */
  readyAt: number;
  open: boolean;
  seqs: SeqSet;
  duplicated: number;
  client: Viewer | null;
  /** First deliveries of this run's messages sent after it was ready, counted as they arrive. */
  gotAfterReady: number;
  expected: number;
  delivered: number;
}

const send = (msg: FromWorker, then?: () => void): void => {
  process.send?.(msg, undefined, {}, () => then?.());
};

let start: Extract<ToWorker, { t: 'start' }>;
let marker = '';
const viewers: ViewerState[] = [];
/** Per room index: message id -> its seq and send time, for this run's messages any viewer here received. */
const seen = new Map<number, Map<string, { seq: number; sentAt: number }>>();
const agents = new Map<string, AnyAgent>();
const ticks = new Map<Transport, { errors: number; deliveries: number; hist: Histogram; e2e: Histogram }>();
const senderTick: SenderTick = { sent: 0, acked: 0, errors: {}, acks: [] };
const reasons: Record<string, number> = {};
let sendDone = false;
let sendersRunning = 0;

const agentFor = (localAddress: string | undefined): AnyAgent => {
  const key = localAddress ?? '';
  let agent = agents.get(key);
  if (!agent) agents.set(key, (agent = httpAgent(start.target, localAddress)));
  return agent;
};

const tickOf = (t: Transport) => {
  let tick = ticks.get(t);
  if (!tick) ticks.set(t, (tick = { errors: 0, deliveries: 0, hist: new Histogram(), e2e: new Histogram() }));
  return tick;
};

/** The sender's clock from a message of this run (`L RUN SENT_AT SENDER.N`), or null for any other message. */
function sentAtOf(content: string | undefined): number | null {
  if (!content || !content.startsWith(marker)) return null;
  const end = content.indexOf(' ', marker.length);
  const at = Number(content.slice(marker.length, end));
  return at > 0 ? at : null;
}

function eventsFor(v: ViewerState): ViewerEvents {
  const tick = tickOf(v.spec.transport);
  let rooms = seen.get(v.spec.room);
  if (!rooms) seen.set(v.spec.room, (rooms = new Map()));
  const ids = rooms;
  const ended = (reason: string): void => {
    v.open = false;
    tick.errors++;
    const key = `${v.spec.transport}: ${reason}`;
    reasons[key] = (reasons[key] ?? 0) + 1;
  };
  return {
    ready: () => {
      if (v.readyAt === Infinity) v.readyAt = Date.now();
      v.open = true;
    },
    messages: (list: readonly Received[]) => {
      const now = Date.now();
      for (const m of list) {
        const sentAt = sentAtOf(m.content);
        if (sentAt === null) continue;
        if (!ids.has(m.id)) ids.set(m.id, { seq: m.seq, sentAt });
        if (!v.seqs.add(m.seq)) {
          v.duplicated++;
          continue;
        }
        if (sentAt > v.readyAt) {
          v.gotAfterReady++;
          tick.deliveries++;
          tick.hist.add(now - m.ts);
          tick.e2e.add(now - sentAt);
        }
      }
    },
    closed: ended,
    error: (reason) => {
      tick.errors++;
      const key = `${v.spec.transport}: ${reason}`;
      reasons[key] = (reasons[key] ?? 0) + 1;
    },
  };
}

function connect(v: ViewerState): void {
  const s = v.spec;
  const events = eventsFor(v);
  if (s.transport === 'poll') v.client = pollViewer(start.target, { roomId: s.roomId, agent: agentFor(s.localAddress) }, events);
  else if (s.transport === 'socketio') v.client = socketioViewer(s.endpoint, { roomId: s.roomId, token: s.token, localAddress: s.localAddress }, events);
  else {
    const options = { roomid: s.roomid as number, protover: start.protover, key: s.token, localAddress: s.localAddress };
    v.client = s.transport === 'bilibili-ws' ? biliWsViewer(s.endpoint, options, events) : biliTcpViewer(s.endpoint, options, events);
  }
}

/** A sender at its rate: message n leaves at n / rate seconds, whatever the answers take (at most 256 waiting). */
async function runSender(spec: SenderSpec): Promise<void> {
  const total = Math.floor(spec.ratePerS * start.sendSeconds);
  const began = Date.now();
  const agent = agentFor(undefined);
  const inFlight = new Set<Promise<void>>();
  for (let n = 0; n < total; n++) {
    const due = began + (n / spec.ratePerS) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (inFlight.size >= 256) await Promise.race(inFlight);
    const room = (spec.offset + n * spec.stride) % start.roomIds.length;
    const sentAt = Date.now();
    senderTick.sent++;
    const p: Promise<void> = sendComment(start.target, agent, start.roomIds[room] as string, spec.token, `${marker}${sentAt} ${spec.index}.${n}`).then((r) => {
      inFlight.delete(p);
      if (r.status === 202 && r.id) {
        senderTick.acked++;
        senderTick.acks.push([room, r.id, sentAt]);
      } else {
        const key = `send ${r.status || 'network'}: ${r.error ?? ''}`;
        senderTick.errors[key] = (senderTick.errors[key] ?? 0) + 1;
      }
    });
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

/** Per room index: the send times of its acknowledged messages, sorted, and their ids. */
let ackedByRoom: Map<number, { times: Float64Array; ids: Set<string> }> | null = null;

/** How many of the sorted `times` are above `t`. */
function countAfter(times: Float64Array, t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((times[mid] as number) > t) hi = mid;
    else lo = mid + 1;
  }
  return times.length - lo;
}

/**
 * Counts each viewer's expected (acknowledged, sent after it was ready) and delivered; returns
 * what ready viewers are still owed. Delivered is what the viewer counted on arrival less the
 * rare messages it got that were never acknowledged (stored, but their answer failed), so a
 * crowd costs a binary search per viewer, not a pass over every message.
 */
function reckon(): number {
  if (!ackedByRoom) return 0;
  const unacked = new Map<number, { seq: number; sentAt: number }[]>();
  for (const [room, ids] of seen) {
    const acks = ackedByRoom.get(room);
    const list: { seq: number; sentAt: number }[] = [];
    for (const [id, m] of ids) if (!acks?.ids.has(id)) list.push(m);
    if (list.length > 0) unacked.set(room, list);
  }
  let outstanding = 0;
  for (const v of viewers) {
    const acks = ackedByRoom.get(v.spec.room);
    v.expected = acks ? countAfter(acks.times, v.readyAt) : 0;
    let extra = 0;
    for (const m of unacked.get(v.spec.room) ?? []) if (m.sentAt > v.readyAt && v.seqs.has(m.seq)) extra++;
    v.delivered = v.gotAfterReady - extra;
    // A closed viewer owes nothing more: waiting for it would only stretch the drain.
    if (v.open) outstanding += Math.max(0, v.expected - v.delivered);
  }
  return outstanding;
}

function tick(): void {
  const transports: Partial<Record<Transport, TransportTick>> = {};
  for (const v of viewers) tickOf(v.spec.transport);
  const connected = new Map<Transport, number>();
  for (const v of viewers) if (v.open) connected.set(v.spec.transport, (connected.get(v.spec.transport) ?? 0) + 1);
  for (const [t, x] of ticks) {
    transports[t] = { connected: connected.get(t) ?? 0, errors: x.errors, deliveries: x.deliveries, hist: x.hist.sparse(), e2e: x.e2e.sparse() };
    x.errors = 0;
    x.deliveries = 0;
    x.hist.reset();
    x.e2e.reset();
  }
  send({ t: 'tick', at: Date.now(), transports, senders: { ...senderTick }, outstanding: ackedByRoom ? reckon() : null, sendDone });
  senderTick.sent = 0;
  senderTick.acked = 0;
  senderTick.errors = {};
  senderTick.acks = [];
}

function finish(): void {
  reckon();
  const totals: Record<string, ViewerTotals> = {};
  for (const v of viewers) {
    const key = `${v.spec.transport}/${v.spec.room}`;
    const t = (totals[key] ??= { viewers: 0, connected: 0, ready: 0, expected: 0, delivered: 0, duplicated: 0, missing: 0 });
    t.viewers++;
    if (v.open) t.connected++;
    if (v.readyAt !== Infinity) t.ready++;
    t.expected += v.expected;
    t.delivered += v.delivered;
    t.duplicated += v.duplicated;
    if (v.delivered < v.expected) t.missing++;
  }
  for (const v of viewers) v.client?.close();
  for (const agent of agents.values()) agent.destroy();
  send({ t: 'final', totals, reasons }, () => process.exit(0));
}

let timer: NodeJS.Timeout | null = null;

process.on('message', (msg: ToWorker) => {
  if (msg.t === 'start') {
    start = msg;
    marker = `L ${msg.runId} `;
    msg.viewers.forEach((spec, k) => {
      const v: ViewerState = { spec, readyAt: Infinity, open: false, seqs: new SeqSet(), duplicated: 0, client: null, gotAfterReady: 0, expected: 0, delivered: 0 };
      viewers.push(v);
      // Even without a ramp, connect in bursts of 50 every 20 ms: thousands of handshakes at once
      // would measure this process's and the server's accept queues, not the deployment.
      setTimeout(() => connect(v), Math.max(spec.delayMs, Math.floor(k / 50) * 20));
    });
    timer = setInterval(tick, 1000);
  } else if (msg.t === 'send') {
    sendersRunning = start.senders.length;
    if (sendersRunning === 0) sendDone = true;
    for (const s of start.senders)
      void runSender(s).then(() => {
        if (--sendersRunning === 0) {
          sendDone = true;
          tick();
        }
      });
  } else if (msg.t === 'expect') {
    ackedByRoom = new Map();
    for (const [room, list] of Object.entries(msg.acked)) {
      const times = Float64Array.from(list, ([, at]) => at).sort();
      ackedByRoom.set(Number(room), { times, ids: new Set(list.map(([id]) => id)) });
    }
    tick();
  } else if (msg.t === 'finish') {
    if (timer) clearInterval(timer);
    tick();
    finish();
  }
});
// Ctrl-C reaches the whole process group: the tool decides when this process finishes and reports.
process.on('SIGINT', () => undefined);
// The tool went away (killed, a second Ctrl-C): nothing to report to.
process.on('disconnect', () => process.exit(0));
