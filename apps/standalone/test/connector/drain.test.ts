/**
 * Graceful drain on a real connector process: SIGTERM makes /readyz answer 503 at once, the route
 * stops offering the connector, its connections close spread evenly over DANMAKU_DRAIN_MS (each
 * socket.io client told to `move` first), the process exits after the window, and an SDK client
 * on it moves to the other connector with its cursor, missing nothing. SIGINT still stops at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { DanmakuClient, type Message } from '@danmaku/client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { assertExactlyOnceInOrder, connectSocket, sendComments, spawnConnector, type ConnectorProcess } from '../../../connector/test/helpers.js';

const DRAIN_MS = 3000;
const SOCKETS = 30;

describe('graceful drain of a connector', () => {
  const cluster = uniqueRoom('cluster');
  let sys: Standalone;
  const procs: ConnectorProcess[] = [];
  const sockets: Socket[] = [];
  const clients: DanmakuClient[] = [];

  before(async () => {
    sys = await startStandalone(testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, pushSweepMs: 500 }), createLogger('test', 'silent'), { connector: false });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    for (const s of sockets) s.close();
    for (const p of procs) await p.proc.kill('SIGKILL');
    await sys.stop();
  });

  const connector = async (env: Record<string, string> = {}): Promise<ConnectorProcess> => {
    const c = await spawnConnector({ DANMAKU_CLUSTER: cluster, DANMAKU_PUSH_MERGE_MS: '20', DANMAKU_PUSH_SWEEP_MS: '500', ...env });
    procs.push(c);
    return c;
  };
  const routeEndpoints = async (): Promise<string[]> => ((await (await fetch(`${sys.url}/v1/route?uid=probe`)).json()) as { endpoints: string[] }).endpoints;

  it('SIGTERM: 503 at once, no longer routed, connections moved over the window, exit after it; the SDK moves and misses nothing', async () => {
    const leaving = await connector({ DANMAKU_DRAIN_MS: String(DRAIN_MS) });
    const roomId = uniqueRoom('drain');
    // The SDK first, while the leaving connector is the only one: it lands there.
    const delivered: Message[] = [];
    const modes: string[] = [];
    const sdk = new DanmakuClient({
      baseUrl: sys.url,
      roomId,
      types: ['comment'],
      uid: 'mover',
      metricsIntervalMs: 0,
      onMessages: (ms) => delivered.push(...ms),
      onMode: (mode, reason, endpoint) => modes.push(`${mode} ${reason} ${endpoint ?? '-'}`),
    });
    clients.push(sdk);
    await sdk.start();
    await waitFor('the SDK on the leaving connector', () => sdk.endpoint === leaving.url, 15_000);
    const staying = await connector();
    await waitFor('both connectors routed', async () => (await routeEndpoints()).length === 2);

    // Raw socket.io viewers on the leaving connector: when each is told to move, and when it closes.
    const moves: number[] = [];
    const closes: { at: number; movedFirst: boolean }[] = [];
    await Promise.all(
      Array.from({ length: SOCKETS }, async () => {
        const socket = await connectSocket(leaving.url, undefined, sockets);
        let movedAt = 0;
        socket.on('move', (p: { reason: string }) => {
          assert.equal(p.reason, 'draining');
          movedAt = Date.now();
          moves.push(movedAt);
        });
        socket.on('disconnect', () => closes.push({ at: Date.now(), movedFirst: movedAt > 0 }));
        const ack = (await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'] })) as { ok: boolean };
        assert.ok(ack.ok);
      }),
    );

    const sent = await sendComments(sys.url, roomId, 5, 'before');
    await waitFor('the SDK has the first comments', () => delivered.length === 5);

    const t0 = Date.now();
    const exited = leaving.proc.kill('SIGTERM');
    // Comments keep coming through the whole drain.
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        sent.push(...(await sendComments(sys.url, roomId, 1, `during ${i}`)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    await waitFor('503 draining', async () => (await fetch(`${leaving.url}/readyz`)).status === 503, 1000, 10);
    const notReadyMs = Date.now() - t0;
    const body = (await (await fetch(`${leaving.url}/readyz`)).json()) as { error: { code: string } };
    assert.equal(body.error.code, 'draining');
    await waitFor('the route stops offering it', async () => !(await routeEndpoints()).includes(leaving.url), 2500, 50);
    const unroutedMs = Date.now() - t0;
    // A new connection is refused while it drains (a client with a stale route answer goes elsewhere).
    const refused = await connectSocket(leaving.url, undefined, sockets).then(
      () => null,
      (err: Error & { data?: { code: string } }) => err.data?.code,
    );
    assert.equal(refused, 'draining');

    const code = await exited;
    const exitMs = Date.now() - t0;
    sending = false;
    await sender;
    sent.push(...(await sendComments(sys.url, roomId, 3, 'after')));

    console.log(`# drain of ${SOCKETS} sockets + 1 SDK over ${DRAIN_MS} ms: readyz 503 after ${notReadyMs} ms, unrouted after ${unroutedMs} ms, exit ${code} after ${exitMs} ms`);
    const offsets = closes.map((c) => c.at - t0).sort((a, b) => a - b);
    console.log(`# closes (ms after SIGTERM): ${offsets.join(' ')}`);
    // At once: the first /readyz after the signal is handled (a busy 2-core machine can take a few hundred ms to deliver it).
    assert.ok(notReadyMs < 1500, `503 at once: ${notReadyMs} ms`);
    assert.equal(code, 0);
    assert.ok(exitMs >= DRAIN_MS && exitMs < DRAIN_MS + 5000, `exit after the window: ${exitMs} ms`);
    assert.equal(closes.length, SOCKETS);
    assert.equal(moves.length, SOCKETS);
    assert.ok(closes.every((c) => c.movedFirst), 'every socket told to move before it closed');
    // Spread evenly from the drain's first close: each third of the window closes about a third of
    // them, and the last goes before the process exits.
    const start = offsets[0] as number;
    for (let third = 0; third < 3; third++) {
      const n = offsets.filter((ms) => ms - start >= (third * DRAIN_MS) / 3 && ms - start < ((third + 1) * DRAIN_MS) / 3).length;
      assert.ok(n >= SOCKETS * 0.2 && n <= SOCKETS * 0.47, `third ${third}: ${n} of ${SOCKETS} (${offsets.join(' ')})`);
    }
    assert.ok((offsets.at(-1) as number) - start >= DRAIN_MS * 0.75, 'spread over the window, not at once');
    assert.ok((offsets.at(-1) as number) <= exitMs, 'all closed before the exit');

    // The SDK moved to the other connector and, with its cursor, has every comment once, in order.
    await waitFor('the SDK on the other connector', () => sdk.endpoint === staying.url, 10_000);
    await waitFor('every comment', () => delivered.length >= sent.length, 10_000);
    assertExactlyOnceInOrder({ ids: delivered.map((m) => m.id), seqs: delivered.map((m) => m.seq) }, sent, 'moved SDK');
    assert.ok(modes.some((m) => m.startsWith('long') && m.endsWith(staying.url)), modes.join('; '));
  });

  it('SIGINT stops at once, without a drain', async () => {
    const c = await connector({ DANMAKU_DRAIN_MS: '60000' });
    const socket = await connectSocket(c.url, undefined, sockets);
    let moved = false;
    socket.on('move', () => (moved = true));
    const t0 = Date.now();
    assert.equal(await c.proc.kill('SIGINT'), 0);
    const ms = Date.now() - t0;
    console.log(`# SIGINT with one socket: exit after ${ms} ms`);
    assert.ok(ms < 5000, `at once: ${ms} ms`);
    assert.equal(moved, false);
  });
});
