/**
 * A deploy rehearsed under load: `npm run start:cluster` as a user runs it (three Kafka brokers, a
 * Redis Cluster, every role twice), then a rolling restart of every role (SIGHUP to the script:
 * each role in turn gets SIGTERM, drains, exits and is started again, the next one once it is
 * ready; connectors drain over DANMAKU_DRAIN_MS = 3 s) while senders send through both fronts and
 * socket.io viewers (the SDK) and pollers watch one room. Held to: nothing acknowledged lost
 * (stored, and seen by every poller and every socket.io viewer), no viewer without new messages
 * for more than a few seconds (the longest gap per viewer), and reconnects paced by the drains
 * (the busiest half second against the viewers a connector holds spread over its window).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DanmakuClient } from '@danmaku/client';
import { LOAD_ENV, TOPOLOGY_PORTS, freePorts, readRoom, startTopology, tokenFor, topologyRoles, uniqueRoom, waitFor, type RunningTopology } from '@danmaku/testkit';

const DRAIN_MS = 3000;
const SENDS_PER_S = 20;
const SENDERS = 4;
const SOCKET_VIEWERS = 40;
const POLLERS = 4;
/** Longest a viewer may go without a new message while messages are sent every 50 ms. */
const MAX_GAP_MS = 5000;
/** Reconnects may come this many times faster than all viewers spread evenly over one drain window. */
const RATE_FACTOR = 3;

let topology: RunningTopology;
let fronts: string[] = [];
let routerUrl = '';

before(async () => {
  const env = await freePorts(TOPOLOGY_PORTS);
  const n = (name: string, plus = 0): string => String(Number(env[name]) + plus);
  topology = await startTopology(
    'start:cluster',
    // Limits lifted and a retention that holds every comment of the run (it is read back from its first).
    { ...env, ...LOAD_ENV, DANMAKU_DRAIN_MS: String(DRAIN_MS) },
    topologyRoles(env, 2),
    ['kafka-cluster', 'redis-cluster'],
  );
  fronts = [0, 1].map((i) => `http://127.0.0.1:${n('PORT', i)}`);
  routerUrl = `http://127.0.0.1:${n('ROUTER_PORT')}`;
});

after(async () => {
  await topology?.stop();
});

/** When each viewer got each message first, and the longest wait between two new ones. */
class Watch {
  readonly seen = new Map<string, number>();
  private last = 0;
  maxGapMs = 0;
  /** What happened during the longest gap (failed polls, waits asked for), for the report. */
  gapNotes: string[] = [];
  private notes: string[] = [];
  /** A socket.io viewer's first join happened (later ones are reconnects). */
  joined = false;
  /** The longest wait between polls a front asked this poller for. */
  maxToldMs = 0;

  note(text: string): void {
    if (this.notes.length < 20) this.notes.push(`${Date.now() - this.last} ms: ${text}`);
  }

  take(ids: readonly string[], counting: boolean): void {
    const now = Date.now();
    let fresh = false;
    for (const id of ids) {
      if (this.seen.has(id)) continue;
      this.seen.set(id, now);
      fresh = true;
    }
    if (!fresh) return;
    if (counting && this.last > 0 && now - this.last > this.maxGapMs) {
      this.maxGapMs = now - this.last;
      this.gapNotes = this.notes;
    }
    this.last = now;
    this.notes = [];
  }
}

test('a rolling restart of every role under load loses nothing acknowledged, keeps every viewer fed, paces reconnects', { timeout: 900_000 }, async () => {
  const room = uniqueRoom('rolling');
  /** Gaps count from the first message on until the sends stop. */
  let counting = true;
  const stopped: (() => void)[] = [];

  // Pollers, each on a front, moving to the other when its front does not answer (as behind a load balancer).
  const pollers = Array.from({ length: POLLERS }, () => new Watch());
  pollers.forEach((watch, k) => {
    let front = k % 2;
    let cursor = '';
    let running = true;
    stopped.push(() => (running = false));
    void (async () => {
      while (running) {
        let wait = 200;
        try {
          const res = await fetch(`${fronts[front]}/v1/rooms/${room}/messages?types=comment&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal: AbortSignal.timeout(5000) });
          if (res.status !== 200) throw new Error(`poll ${res.status}`);
          const page = (await res.json()) as { messages: { id: string }[]; cursor: string; retryAfterMs?: number };
          watch.take(page.messages.map((m) => m.id), counting);
          cursor = page.cursor;
          wait = page.messages.length >= 200 ? 0 : (page.retryAfterMs ?? 2000);
          if (counting) watch.maxToldMs = Math.max(watch.maxToldMs, wait);
          watch.note(`front-${front + 1} answered ${page.messages.length}, wait ${wait} ms`);
        } catch (err) {
          watch.note(`front-${front + 1} failed: ${(err as Error).message}`);
          front = 1 - front;
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
  });

  // socket.io viewers through the SDK: routed by the router, moved by draining connectors.
  const sockets = Array.from({ length: SOCKET_VIEWERS }, () => new Watch());
  /** When a viewer joined a connector (its first join excluded): the reconnects. */
  const reconnects: number[] = [];
  const clients = sockets.map(
    (watch, k) =>
      new DanmakuClient({
        baseUrl: fronts[k % 2] as string,
        routerUrl,
        roomId: room,
        types: ['comment'],
        uid: `rolling-viewer-${k}`,
        metricsIntervalMs: 0,
        onMessages: (messages) => watch.take(messages.map((m) => m.id), counting),
        onMode: (mode, _reason, endpoint) => {
          if (mode === 'long' && endpoint && watch.joined) reconnects.push(Date.now());
          if (mode === 'long') watch.joined = true;
        },
      }),
  );
  await Promise.all(clients.map((c) => c.start()));
  await waitFor('every socket.io viewer on a connector', () => clients.every((c) => c.mode === 'long' && c.endpoint), 60_000, 50);
  const perConnector = new Map<string, number>();
  for (const c of clients) perConnector.set(c.endpoint as string, (perConnector.get(c.endpoint as string) ?? 0) + 1);

  // Senders: SENDERS loops, each one comment at a time (a comment every 50 ms in all while the
  // fronts keep up), alternating fronts; a refused or failed send is sent again (same clientMsgId)
  // to the other front until it is acknowledged. Closed loop: a slow front slows the senders down
  // instead of piling retries onto it.
  const acked = new Map<string, number>();
  const refusals: Record<string, number> = {};
  const token = tokenFor('rolling-writer');
  let sending = true;
  const sendOne = async (i: number): Promise<void> => {
    for (let attempt = 0; sending; attempt++) {
      const front = fronts[(i + attempt) % 2] as string;
      try {
        const res = await fetch(`${front}/v1/rooms/${room}/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'comment', content: `r${i}`, clientMsgId: `r${i}` }),
          signal: AbortSignal.timeout(5000),
        });
        const body = (await res.json()) as { id?: string; error?: { code: string } };
        if (res.status === 202) {
          acked.set(body.id as string, Date.now());
          return;
        }
        refusals[body.error?.code ?? `http_${res.status}`] = (refusals[body.error?.code ?? `http_${res.status}`] ?? 0) + 1;
      } catch (err) {
        const code = (err as Error).name === 'TimeoutError' ? 'timeout' : 'no_answer';
        refusals[code] = (refusals[code] ?? 0) + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  let next = 0;
  const senderLoop = async (): Promise<void> => {
    const every = (SENDERS * 1000) / SENDS_PER_S;
    while (sending) {
      const started = Date.now();
      await sendOne(next++);
      const wait = started + every - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
  const senders = Promise.all(Array.from({ length: SENDERS }, senderLoop));
  await waitFor('every viewer fed', () => [...pollers, ...sockets].every((w) => w.seen.size > 0), 60_000, 50);

  // The rolling restart: start:cluster's SIGHUP.
  const pid = Number(/kill -HUP (\d+)/.exec(topology.output())?.[1]);
  assert.ok(pid > 0, 'start:cluster printed how to ask for a rolling restart');
  const restartStarted = Date.now();
  process.kill(pid, 'SIGHUP');
  const doneLine = await waitFor('the rolling restart to finish', () => /rolling restart (done in \d+ ms|failed: .*)/.exec(topology.output())?.[0], 720_000, 250);
  assert.match(doneLine, /done/, topology.output().slice(-3000));
  const restartMs = Date.now() - restartStarted;
  // A few seconds more of load on the new processes, then the sends stop.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  sending = false;
  counting = false;
  await senders;

  // Every acknowledged comment is stored and reaches every viewer.
  const stored = await readRoom(fronts[0] as string, room, { until: (read) => [...acked.keys()].every((id) => read.some((m) => m.id === id)), timeoutMs: 60_000 }).catch(() => null);
  const missing = (w: Watch): number => [...acked.keys()].filter((id) => !w.seen.has(id)).length;
  await waitFor('every viewer to have every acknowledged comment', () => [...pollers, ...sockets].every((w) => missing(w) === 0), 60_000, 200).catch(() => undefined);
  for (const stop of stopped) stop();
  await Promise.all(clients.map((c) => c.stop()));

  const window = 500;
  const buckets = new Map<number, number>();
  for (const at of reconnects) buckets.set(Math.floor(at / window), (buckets.get(Math.floor(at / window)) ?? 0) + 1);
  const peakPerS = (Math.max(0, ...buckets.values()) * 1000) / window;
  // A connector may hold every viewer when it drains (the other one restarted just before).
  const boundPerS = (SOCKET_VIEWERS / (DRAIN_MS / 1000)) * RATE_FACTOR;
  const report = {
    restartMs,
    acked: acked.size,
    refusals,
    stored: stored?.length ?? null,
    pollers: pollers.map((w) => ({ missing: missing(w), maxGapMs: w.maxGapMs, maxToldMs: w.maxToldMs, gap: w.gapNotes })),
    socketio: { perConnectorBefore: Object.fromEntries(perConnector), maxGapMs: Math.max(...sockets.map((w) => w.maxGapMs)), missing: sockets.reduce((n, w) => n + missing(w), 0) },
    reconnects: { count: reconnects.length, peakPerS, boundPerS, meanPerS: Math.round((reconnects.length / (restartMs / 1000)) * 10) / 10 },
  };
  process.stdout.write(`# rolling restart: ${JSON.stringify(report)}\n`);

  assert.ok(acked.size > 100, `sends were acknowledged throughout (${acked.size})`);
  assert.ok(stored, 'every acknowledged comment is stored');
  for (const [k, w] of pollers.entries()) assert.equal(missing(w), 0, `poller ${k} saw every acknowledged comment`);
  for (const [k, w] of sockets.entries()) assert.equal(missing(w), 0, `socket.io viewer ${k} saw every acknowledged comment`);
  // A poller sees new messages once per poll: its bound adds the longest wait between polls a front asked for.
  for (const [k, w] of pollers.entries()) assert.ok(w.maxGapMs <= MAX_GAP_MS + w.maxToldMs, `poller ${k} went ${w.maxGapMs} ms without a new message (told to wait up to ${w.maxToldMs} ms): ${w.gapNotes.join('; ')}`);
  for (const [k, w] of sockets.entries()) assert.ok(w.maxGapMs <= MAX_GAP_MS, `socket.io viewer ${k} went ${w.maxGapMs} ms without a new message`);
  // Both connectors restarted: every socket.io viewer moved at least once.
  assert.ok(reconnects.length >= SOCKET_VIEWERS, `${reconnects.length} reconnects for ${SOCKET_VIEWERS} viewers`);
  assert.ok(peakPerS <= boundPerS, `reconnects peaked at ${peakPerS}/s; a drain over ${DRAIN_MS} ms of ${SOCKET_VIEWERS} viewers allows ${boundPerS}/s`);
});
