/**
 * The connector's one compacting collection after a crowd comes or goes (ConnectorCore.reclaim):
 * when it runs, when it must not (too few connections, or packets still going out), on a real
 * connector process started with --expose-gc as scripts/role.sh starts it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { sleep, testConfig, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { connectSocket, metricValue, sendComments, spawnConnector } from '../../../connector/test/helpers.js';

interface Collection {
  msg: string;
  time: number;
  open: number;
  closed: number;
  pauseMs: number;
}

const COLLECTED = /collected after many connections (opened|closed)/;

/** The collections the connector logged so far, oldest first. */
function collections(proc: Spawned): Collection[] {
  return proc
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && COLLECTED.test(line))
    .map((line) => JSON.parse(line) as Collection);
}

/** n more anonymous clients into `opened`, in batches: a thousand handshakes at once only measure the test process. */
async function openClients(url: string, n: number, opened: Socket[]): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connectSocket(url, undefined, opened)));
  }
}

describe('connector: the collection after a crowd', () => {
  const cluster = uniqueRoom('reclaim');
  let system: Standalone;
  let connector: Spawned;
  let url: string;
  const clients: Socket[] = [];

  before(async () => {
    system = await startStandalone(testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, pushMergeMs: 20 }), createLogger('test', 'silent'), { connector: false });
    // Info: the collections are logged at info.
    ({ proc: connector, url } = await spawnConnector({ LOG_LEVEL: 'info', DANMAKU_CLUSTER: cluster }, ['--expose-gc']));
  });
  after(async () => {
    for (const c of clients) c.close();
    // Either is unset when its start failed (before threw): the rest must still close.
    const started: { connector?: Spawned; system?: Standalone } = { connector, system };
    await started.connector?.kill('SIGKILL');
    await started.system?.stop();
  });

  /**
   * Two of the connector's 1 s ticks, observed rather than slept through: the tick that decides on
   * a collection also sets the rooms gauge, so a client that joins a fresh room shows up there
   * only once a tick has run after the join. `rooms` is how many rooms the connector has before.
   */
  async function twoTicks(rooms: number): Promise<void> {
    for (let i = 1; i <= 2; i++) {
      const ack = (await (clients[i] as Socket).timeout(10_000).emitWithAck('join', { roomId: uniqueRoom('tick') })) as { ok: boolean };
      assert.equal(ack.ok, true, JSON.stringify(ack));
      await waitFor(`tick ${i}: the rooms gauge at ${rooms + i}`, async () => (await metricValue(url, 'danmaku_connector_rooms')) === rooms + i);
    }
  }

  it('collects once a thousand have arrived and the room is quiet, and again once they have left', async () => {
    // Fewer than a thousand new connections: no collection, however long they sit (two ticks, quiet).
    await openClients(url, 600, clients);
    await twoTicks(0);
    assert.deepEqual(collections(connector), [], 'no collection for 600 connections');

    // The crowd is watching a room where comments keep coming: no pause while packets go out.
    const room = uniqueRoom('reclaim-room');
    const watcher = clients[0] as Socket;
    const joined = await watcher.timeout(10_000).emitWithAck('join', { roomId: room });
    assert.equal((joined as { ok: boolean }).ok, true, JSON.stringify(joined));
    let delivered = 0;
    watcher.on('messages', (packet: { messages: unknown[] }) => (delivered += packet.messages.length));
    await openClients(url, 400, clients);
    const sendingUntil = Date.now() + 5000;
    let sent = 0;
    while (Date.now() < sendingUntil) {
      sent += (await sendComments(system.url, room, 1, `busy ${sent}`)).length;
      await sleep(400);
    }
    const lastSendAt = Date.now();
    assert.deepEqual(collections(connector), [], 'no collection while packets go out');
    await waitFor('every comment delivered', () => delivered >= sent, 10_000);

    // Quiet again: the collection comes, at least 3 s after the last packet.
    await waitFor('the collection after the crowd arrived', () => collections(connector).length > 0, 15_000);
    const [arrived] = collections(connector) as [Collection];
    assert.equal(arrived.msg, 'collected after many connections opened');
    assert.equal(arrived.open, 1000);
    assert.ok(arrived.time - lastSendAt >= 2500, `collected ${arrived.time - lastSendAt} ms after the last send`);
    assert.ok(Number.isFinite(arrived.pauseMs) && arrived.pauseMs >= 0, JSON.stringify(arrived));

    // Some leave: not enough to collect for.
    for (const c of clients.splice(0, 400)) c.close();
    // The rooms left with the first 400 (the watcher's and the ticks'): none remains.
    await waitFor('the rooms of the 400 gone', async () => (await metricValue(url, 'danmaku_connector_rooms')) === 0);
    await twoTicks(0);
    assert.equal(collections(connector).length, 1, 'no collection when 400 of 1,000 left');
    // The rest leave: a thousand gone since the peak, and nobody left.
    for (const c of clients.splice(0)) c.close();
    await waitFor('the collection after the crowd left', () => collections(connector).length > 1, 15_000);
    const left = collections(connector)[1] as Collection;
    assert.equal(left.msg, 'collected after many connections closed');
    assert.equal(left.closed, 1000);
    assert.equal(left.open, 0);
    assert.equal(collections(connector).length, 2);
  });
});
