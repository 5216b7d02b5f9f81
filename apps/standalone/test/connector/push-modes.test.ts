/**
 * Messages sent over HTTP reach every joined socket.io client (separate
 * processes, two connector processes) once and in seq order, in notify/pull mode and in broadcast
 * mode, and the pusher switches a room between them by its subscriber count, with hysteresis.
 * The connectors' slow sweep is set to a minute, so delivery here is the push path's doing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { pushKeys } from '@danmaku/push';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createRedis, type Redis } from '@danmaku/store';
import { spawnTs, testConfig, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { assertExactlyOnceInOrder, metricValue, sendComments, spawnConnector, waitForReport, type ConnectorProcess } from '../../../connector/test/helpers.js';

interface Got {
  ids: string[];
  seqs: number[];
  packets: number;
  status: string;
}

describe('push modes', () => {
  const cluster = uniqueRoom('cluster');
  const env = { DANMAKU_CLUSTER: cluster, DANMAKU_PUSH_SWEEP_MS: '60000' };
  let system: Standalone;
  let a: ConnectorProcess;
  let b: ConnectorProcess;
  let redis: Redis;
  const listeners: Spawned[] = [];

  before(async () => {
    system = await startStandalone(testConfig({ cluster, pushBigRoom: 4, pushSmallRoom: 2, pushSweepMs: 60_000, rateUserMax: 1_000_000, rateIpMax: 1_000_000 }), createLogger('test', 'silent'), { connector: false });
    [a, b] = await Promise.all([spawnConnector(env), spawnConnector(env)]);
    redis = createRedis(testConfig().redisUrl);
  });
  after(async () => {
    for (const l of listeners) await l.kill('SIGKILL');
    await Promise.all([a.proc.kill(), b.proc.kill()]);
    await system.stop();
    redis.disconnect();
  });

  async function listen(url: string, room: string, count: number): Promise<Spawned> {
    const proc = spawnTs('apps/connector/test/fixtures/listener.ts', { URL: url, ROOM: room, COUNT: String(count) });
    listeners.push(proc);
    await proc.waitForOutput(new RegExp(`joined ${count}`));
    return proc;
  }

  const allGot = (sent: string[]) => (clients: Got[]) => clients.every((c) => c.ids.length >= sent.length);
  const metric = (name: string, labels: Record<string, string>) => metricValue(system.url, name, labels);
  /** Until the connectors' subscriber counts of the room in Redis (what the pusher decides by) add up to `n`. */
  const settle = (room: string, n: number) =>
    waitFor(`${n} subscribers of ${room} in Redis`, async () => {
      const counts = await redis.hvals(pushKeys.subscribers(cluster, room));
      return counts.reduce((sum, c) => sum + Number(c), 0) === n;
    });

  it('delivers once, in order, in both modes, switching with the room size', async () => {
    const room = uniqueRoom('modes');
    const l1 = await listen(a.url, room, 2);
    const l2 = await listen(b.url, room, 1);
    await settle(room, 3);

    // 3 subscribers < 4: notify/pull.
    const notifyBefore = await metric('danmaku_pusher_pushes_total', { mode: 'notify' });
    const phase1 = await sendComments(system.url, room, 15, 'notify');
    for (const l of [l1, l2]) {
      const clients = await waitForReport<Got[]>('phase 1 on every client', l, allGot(phase1));
      clients.forEach((c, i) => assertExactlyOnceInOrder(c, phase1, `phase 1 client ${i}`));
    }
    assert.ok((await metric('danmaku_pusher_pushes_total', { mode: 'notify' })) > notifyBefore, 'pushed by notify');
    assert.equal(await metric('danmaku_pusher_pushes_total', { mode: 'broadcast' }), 0);

    // 5 subscribers >= 4: broadcast.
    const l3 = await listen(b.url, room, 2);
    await settle(room, 5);
    const phase2 = await sendComments(system.url, room, 15, 'broadcast');
    for (const l of [l1, l2]) {
      const clients = await waitForReport<Got[]>('phase 2 on the first clients', l, allGot([...phase1, ...phase2]));
      clients.forEach((c, i) => assertExactlyOnceInOrder(c, [...phase1, ...phase2], `phase 2 client ${i}`));
    }
    // The late joiners got the recent window on join, then the live stream: still once each.
    const late = await waitForReport<Got[]>('phase 2 on the late clients', l3, allGot([...phase1, ...phase2]));
    late.forEach((c, i) => assertExactlyOnceInOrder(c, [...phase1, ...phase2], `late client ${i}`));
    assert.equal(await metric('danmaku_pusher_mode_switches_total', { to: 'broadcast' }), 1);
    assert.ok((await metric('danmaku_pusher_pushes_total', { mode: 'broadcast' })) > 0, 'pushed by broadcast');
    // The first broadcast read the store. A room where each comment is delivered before the next
    // one comes (most rooms) gets its advances broadcast as they came, with no read: each carries
    // exactly what follows the last broadcast.
    assert.ok((await metric('danmaku_pusher_broadcast_sources_total', { source: 'store' })) > 0, 'the first broadcast read the store');
    const carriedBefore = await metric('danmaku_pusher_broadcast_sources_total', { source: 'carried' });
    const oneByOne: string[] = [];
    for (let i = 0; i < 3; i++) {
      oneByOne.push(...(await sendComments(system.url, room, 1, `one by one ${i}`)));
      await waitForReport<Got[]>(`one by one ${i} delivered`, l1, allGot([...phase1, ...phase2, ...oneByOne]));
    }
    assert.ok((await metric('danmaku_pusher_broadcast_sources_total', { source: 'carried' })) >= carriedBefore + 3, 'each of them broadcast as its advance carried it');
    phase2.push(...oneByOne);
    // The per-mode room gauge is recomputed every second.
    await waitFor('the room counted as broadcast', async () => (await metric('danmaku_pusher_rooms', { mode: 'broadcast' })) === 1, 3000);
    // Both connectors took the payload rather than pulling.
    for (const c of [a, b]) assert.ok((await metricValue(c.url, 'danmaku_connector_broadcasts_total', { result: 'taken' })) > 0, `${c.url} took broadcasts`);

    // Back to 3: above the low mark (2), so it stays broadcast (hysteresis).
    l3.child.stdin?.write('exit\n');
    await settle(room, 3);
    const phase3 = await sendComments(system.url, room, 5, 'hysteresis');
    const upTo3 = [...phase1, ...phase2, ...phase3];
    for (const l of [l1, l2]) (await waitForReport<Got[]>('phase 3', l, allGot(upTo3))).forEach((c, i) => assertExactlyOnceInOrder(c, upTo3, `phase 3 client ${i}`));
    assert.equal(await metric('danmaku_pusher_mode_switches_total', { to: 'notify' }), 0, 'no switch back yet');

    // Down to 2: notify again.
    l2.child.stdin?.write('exit\n');
    await settle(room, 2);
    const notifyMid = await metric('danmaku_pusher_pushes_total', { mode: 'notify' });
    const phase4 = await sendComments(system.url, room, 5, 'notify again');
    const all = [...upTo3, ...phase4];
    (await waitForReport<Got[]>('phase 4', l1, allGot(all))).forEach((c, i) => assertExactlyOnceInOrder(c, all, `phase 4 client ${i}`));
    assert.equal(await metric('danmaku_pusher_mode_switches_total', { to: 'notify' }), 1);
    assert.ok((await metric('danmaku_pusher_pushes_total', { mode: 'notify' })) > notifyMid, 'notify again');
  });
});
