/**
 * One connector of two worker processes (DANMAKU_CONNECTOR_WORKERS=2) behind one CONNECTOR_PORT
 * and one DANMAKU_BILI_TCP_PORT: Bilibili TCP clients and socket.io clients (long-polling first,
 * then upgraded; and WebSocket only) land on both workers, and a comment to their room reaches each
 * once; /metrics sums the workers; a killed worker is forked again and its clients come back;
 * SIGTERM drains every worker and the connector exits.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { LiveTCP } from 'bilibili-live-ws';
import { io, type Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { pushKeys } from '@danmaku/push';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { freePort, spawnTs, testConfig, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { sendComments } from '../../../connector/test/helpers.js';

const BILI = 12;
const POLLING_FIRST = 6;
const WEBSOCKET_ONLY = 6;
/** Every request a long-polling client sends (its POSTs carry bodies) goes through the primary to its worker. */
const POLLING_ONLY = 2;
const SOCKET_IO = POLLING_FIRST + WEBSOCKET_ONLY + POLLING_ONLY;
const DRAIN_MS = 1500;

interface Viewer {
  kind: 'bili' | 'polling-first' | 'websocket' | 'polling';
  /** Comment contents in the order they arrived. */
  got: string[];
  /** Bilibili: false once its connection closed (the protocol has no reconnect of its own). */
  open: boolean;
  close(): void;
}

describe('a connector of two worker processes', () => {
  const cluster = uniqueRoom('workers');
  const roomid = randomInt(100_000_000, 2_000_000_000);
  const roomId = String(roomid);
  let sys: Standalone;
  let connector: Spawned;
  let url: string;
  let tcpPort: number;
  let redis: Redis;
  const viewers: Viewer[] = [];

  const workerPids = (): number[] => [...connector.output().matchAll(/connector \S+ listening on \S+ \(worker pid (\d+)\)/g)].map((m) => Number(m[1]));
  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  };
  /** This room's sockets per connector node, as the pushers read them. */
  const perNode = async (): Promise<Record<string, number>> =>
    Object.fromEntries(Object.entries(await redis.hgetall(pushKeys.subscribers(cluster, roomId))).map(([node, n]) => [node, Number(n)]));

  before(async () => {
    const config = testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, anonViewers: true, pushMergeMs: 20, pushSweepMs: 500 });
    sys = await startStandalone(config, createLogger('test', 'silent'), { connector: false });
    redis = new Redis(config.redisUrl);
    tcpPort = await freePort();
    connector = spawnTs('apps/connector/src/main.ts', {
      LOG_LEVEL: 'warn',
      CONNECTOR_PORT: '0',
      KAFKA_BROKERS: '',
      DANMAKU_CONNECTOR_WORKERS: '2',
      DANMAKU_BILI_TCP_PORT: String(tcpPort),
      DANMAKU_CLUSTER: cluster,
      DANMAKU_PUSH_MERGE_MS: '20',
      DANMAKU_PUSH_SWEEP_MS: '500',
      DANMAKU_DRAIN_MS: String(DRAIN_MS),
    });
    await connector.waitForOutput(/connector primary of 2 workers listening on \S+/);
    url = (/connector primary of 2 workers listening on (\S+)/.exec(connector.output()) as RegExpExecArray)[1] as string;
  });
  after(async () => {
    for (const v of viewers) v.close();
    await connector.kill('SIGKILL');
    redis.disconnect();
    await sys.stop();
  });

  const biliViewer = (): Viewer => {
    const live = new LiveTCP(roomid, { host: '127.0.0.1', port: tcpPort, protover: 2 });
    const viewer: Viewer = { kind: 'bili', got: [], open: true, close: () => live.close() };
    live.on('error', () => undefined);
    live.on('close', () => (viewer.open = false));
    live.on('DANMU_MSG', (data: { info: unknown[] }) => viewer.got.push(String(data.info[1])));
    viewers.push(viewer);
    return viewer;
  };
  /** A socket.io viewer that joins the room on every connect (so it rejoins after a reconnect), like the SDK. */
  const socketViewer = (kind: 'polling-first' | 'websocket' | 'polling'): { viewer: Viewer; socket: Socket; transports: string[] } => {
    // A handshake handed to a worker in the instant it dies waits for nothing: the client's own
    // connect timeout (20 s by default) gives up on it and tries again.
    const socket = io(url, { ...(kind === 'polling-first' ? {} : { transports: [kind] }), reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 3000 });
    const viewer: Viewer = { kind, got: [], open: true, close: () => socket.close() };
    const transports: string[] = [];
    // Each engine.io connection: the transport it opened on, then the one it upgraded to.
    socket.io.on('open', () => {
      transports.push(socket.io.engine.transport.name);
      socket.io.engine.once('upgrade', (t: { name: string }) => transports.push(t.name));
    });
    socket.on('connect', () => {
      // Every event the connector takes is acknowledged; one without an ack callback is bad input.
      socket.emit('join', { roomId, types: ['comment'] }, (ack: { ok: boolean }) => assert.ok(ack.ok, JSON.stringify(ack)));
    });
    socket.on('messages', (p: { roomId: string; messages: { content?: string }[] }) => {
      if (p.roomId === roomId) for (const m of p.messages) viewer.got.push(String(m.content));
    });
    viewers.push(viewer);
    return { viewer, socket, transports };
  };

  /** Sends `content` and waits until every viewer has it; each must have had it exactly once. */
  const everyoneGets = async (content: string, who: Viewer[] = viewers): Promise<void> => {
    await sendComments(sys.url, roomId, 1, content);
    await waitFor(`"${content}" at every viewer`, () => who.every((v) => v.got.some((c) => c.startsWith(content))), 20_000);
    // A sentinel after it: whatever came before it has arrived, so a duplicate would show now.
    await sendComments(sys.url, roomId, 1, `${content}-sentinel`);
    await waitFor(`the sentinel after "${content}" at every viewer`, () => who.every((v) => v.got.some((c) => c.startsWith(`${content}-sentinel`))), 20_000);
    for (const [i, v] of who.entries()) assert.equal(v.got.filter((c) => c === `${content} 0`).length, 1, `viewer ${i} (${v.kind}) got "${content}" once: ${JSON.stringify(v.got)}`);
  };

  it('spreads Bilibili TCP and socket.io clients (polling first and WebSocket only) over both workers; a comment reaches each once; /metrics sums them', async () => {
    assert.equal(workerPids().length, 2);
    const bili = Array.from({ length: BILI }, biliViewer);
    const polling = Array.from({ length: POLLING_FIRST }, () => socketViewer('polling-first'));
    const websocket = Array.from({ length: WEBSOCKET_ONLY }, () => socketViewer('websocket'));
    const pollingOnly = Array.from({ length: POLLING_ONLY }, () => socketViewer('polling'));
    // Every viewer counted in the room, on both nodes (each worker is a connector node of its own).
    await waitFor('every viewer in the room', async () => Object.values(await perNode()).reduce((a, b) => a + b, 0) === BILI + SOCKET_IO, 20_000, 100);
    const nodes = await perNode();
    assert.equal(Object.keys(nodes).length, 2, `both workers hold viewers: ${JSON.stringify(nodes)}`);
    assert.ok(Object.values(nodes).every((n) => n > 0), JSON.stringify(nodes));
    await waitFor('the polling-first clients upgraded', () => polling.every((p) => p.transports.join(',') === 'polling,websocket'), 20_000);
    assert.ok(websocket.every((w) => w.transports.join(',') === 'websocket'));
    assert.ok(pollingOnly.every((p) => p.transports.join(',') === 'polling'));

    await everyoneGets('to all');
    assert.equal(bili.length + polling.length + websocket.length + pollingOnly.length, viewers.length);

    // Sums over both workers, as the pushers see them.
    assert.equal(await metric('danmaku_connector_sessions', 'transport="bilibili"'), BILI);
    assert.equal(await metric('danmaku_connector_sessions', 'transport="socket.io"'), SOCKET_IO);
    // Two nodes in the registry, one connector to the clients: the route lists its address once.
    const route = (await (await fetch(`${sys.url}/v1/route?uid=probe`)).json()) as { endpoints: string[]; bilibili: { ws: string[]; tcp: string[] } };
    assert.deepEqual(route.endpoints, [url]);
    assert.deepEqual(route.bilibili.tcp, [`127.0.0.1:${tcpPort}`]);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200, await ready.clone().text());
    assert.equal(((await ready.json()) as { checks: Record<string, boolean> }).checks.workers, true);
  });

  it('is not ready while one worker does not answer, and ready again once it does', async () => {
    const [stopped] = workerPids() as [number];
    process.kill(stopped, 'SIGSTOP');
    try {
      // A probe handed to the stopped worker waits for it: a short timeout, and the next goes to the other.
      await waitFor('/readyz 503', async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => null))?.status === 503, 20_000, 20);
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    await waitFor('/readyz 200 again', async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => null))?.status === 200, 20_000, 50);
  });

  it('forks a killed worker again; its socket.io clients reconnect and get the next comment', async () => {
    const [victim, survivor] = workerPids() as [number, number];
    const nodesBefore = await perNode();
    process.kill(victim, 'SIGKILL');
    await waitFor('a replacement worker', () => workerPids().length === 3, 30_000, 100);
    const replacement = workerPids()[2] as number;
    assert.ok(![victim, survivor].includes(replacement));
    await waitFor('/readyz 200 again', async () => (await fetch(`${url}/readyz`)).status === 200, 20_000, 100);
    // The socket.io clients of the dead worker are back in the room, on whichever worker took them.
    // A handshake handed to the worker as it died waits out the client's 3 s connect timeout, and
    // on a loaded machine a reconnect can take a few rounds of that.
    let sessions = 0;
    await waitFor('every socket.io viewer back in the room', async () => (sessions = await metric('danmaku_connector_sessions', 'transport="socket.io"')) === SOCKET_IO, 45_000, 100).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${sessions} socket.io sessions of ${SOCKET_IO}`);
    });
    // The Bilibili protocol has no reconnect of its own: those on the dead worker closed, the rest
    // stay on the survivor and still get comments.
    await waitFor('the Bilibili sessions of the dead worker gone', async () => (await metric('danmaku_connector_sessions', 'transport="bilibili"')) === viewers.filter((v) => v.kind === 'bili' && v.open).length, 20_000, 100);
    const biliLeft = viewers.filter((v) => v.kind === 'bili' && v.open).length;
    assert.ok(biliLeft > 0 && biliLeft < BILI, `Bilibili viewers left on the survivor: ${biliLeft} of ${BILI} (room by node before: ${JSON.stringify(nodesBefore)})`);
    await everyoneGets('after the kill', viewers.filter((v) => v.open));
  });

  it('a worker that cannot start stops the connector (exit 1, saying why)', async () => {
    // The Bilibili TCP port is taken: every worker's listen fails, so the primary gives up.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const failing = spawnTs('apps/connector/src/main.ts', {
        LOG_LEVEL: 'warn',
        CONNECTOR_PORT: '0',
        KAFKA_BROKERS: '',
        DANMAKU_CONNECTOR_WORKERS: '2',
        DANMAKU_BILI_TCP_PORT: String((taken.address() as AddressInfo).port),
        DANMAKU_CLUSTER: cluster,
      });
      const code = await waitFor('the connector to exit', () => failing.child.exitCode, 30_000, 50);
      assert.equal(code, 1);
      assert.match(failing.output(), /exited before the connector started/);
      assert.match(failing.output(), /EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it('SIGTERM drains every worker (readyz 503, connections moved) and exits 0', async () => {
    const pids = workerPids().slice(-2);
    const moved: string[] = [];
    for (const v of viewers.filter((x) => x.kind !== 'bili')) v.close();
    const { socket } = socketViewer('websocket');
    await waitFor('a fresh viewer connected', () => socket.connected, 10_000);
    socket.on('move', (p: { reason: string }) => moved.push(p.reason));
    const exited = connector.kill('SIGTERM');
    await waitFor('503 draining', async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 503, 5000, 20);
    assert.equal(await exited, 0);
    assert.deepEqual(moved, ['draining']);
    // The Bilibili connections the drain closed (the protocol has no move: its clients reconnect by themselves).
    await waitFor('every Bilibili connection closed', () => viewers.every((v) => v.kind !== 'bili' || !v.open), 5000);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), `worker ${pid} exited`);
  });
});
