/**
 * The SDK's parts on their own: delivery (once each, in order, the cursor), routing (rotation,
 * degrading after three failed connects, backoff, no router) and metrics (batches, latency samples).
 * The whole SDK against real servers is in apps/connector/test/failover.test.ts.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeCursor, encodeCursor, type Message, type MessageType } from '@danmaku/protocol';
import { freePort, waitFor } from '@danmaku/testkit';
import { Delivery } from '../src/delivery.js';
import { Metrics } from '../src/metrics.js';
import { Routing, STABLE_MS, fullJitterMs } from '../src/routing.js';

const msg = (type: MessageType, seq: number, id = `${type}-${seq}`, ts = Date.now()): Message => ({
  id,
  roomId: 'r',
  type,
  seq,
  ts,
  user: { id: 'u', name: 'U' },
  content: `${type} ${seq}`,
});

describe('delivery', () => {
  it('delivers each message once, in seq order per type, whatever the order and repeats it gets', () => {
    const d = new Delivery();
    assert.equal(d.cursor, undefined);
    assert.deepEqual(
      d.accept([msg('comment', 2), msg('gift', 1), msg('comment', 1), msg('comment', 2)]).map((m) => m.id),
      ['comment-1', 'comment-2', 'gift-1'],
    );
    // A push and a poll overlapping, and a reconnect's catch-up re-sending what was seen.
    assert.deepEqual(
      d.accept([msg('comment', 4), msg('comment', 1), msg('comment', 3), msg('gift', 1)]).map((m) => m.id),
      ['comment-3', 'comment-4'],
    );
    assert.deepEqual(decodeCursor(d.cursor ?? ''), { comment: 4, gift: 1 });
  });

  it('drops a message seen under another seq (by id) and anything behind the seq a server cursor gave', () => {
    const d = new Delivery();
    d.accept([msg('comment', 1, 'a')]);
    assert.deepEqual(d.accept([msg('comment', 2, 'a')]), []);
    d.advance(encodeCursor({ comment: 10, enter: 3 }));
    assert.deepEqual(d.accept([msg('comment', 9), msg('enter', 3), msg('comment', 11)]).map((m) => m.id), ['comment-11']);
    // A cursor is a floor, never a step back; one it cannot read changes nothing.
    d.advance(encodeCursor({ comment: 5 }));
    d.advance('not-a-cursor!');
    assert.deepEqual(decodeCursor(d.cursor ?? ''), { comment: 11, enter: 3 });
  });

  it('rewinds a type whose stream restarted below it (a skipped answer behind its cursor), and only then', () => {
    const d = new Delivery();
    d.accept([msg('comment', 7), msg('gift', 3)]);
    // A skipped answer ahead of us (retention, sampling): nothing goes back.
    d.rewind(encodeCursor({ comment: 9 }));
    assert.deepEqual(d.accept([msg('comment', 2, 'old-2')]), []);
    // Behind us: the room's live state expired and numbers from 1 again.
    d.rewind(encodeCursor({ comment: 1 }));
    assert.deepEqual(d.accept([msg('comment', 1, 'new-1')]).map((m) => m.id), ['new-1']);
    assert.deepEqual(decodeCursor(d.cursor ?? ''), { comment: 1, gift: 3 });
    // What was delivered before stays known by id.
    assert.deepEqual(d.accept([msg('comment', 7)]), []);
  });

  it('forgets the oldest ids past its capacity, still guarded by the seqs', () => {
    const d = new Delivery(3);
    d.accept([1, 2, 3, 4, 5].map((seq) => msg('comment', seq)));
    // comment-1 left the id set; its seq is still behind.
    assert.deepEqual(d.accept([msg('comment', 1)]), []);
    assert.deepEqual(d.accept([msg('gift', 1, 'comment-5')]), [], 'a recent id is still known');
  });
});

/** Routing options for the tests: small backoff numbers; `extra` overrides. */
const options = (baseUrl: string, extra: Partial<ConstructorParameters<typeof Routing>[0]> = {}): ConstructorParameters<typeof Routing>[0] => ({
  baseUrl,
  fetch: globalThis.fetch,
  maxFailures: 3,
  longRetryMs: 1000,
  longRetryMaxMs: 5000,
  reconnectBaseMs: 100,
  reconnectMaxMs: 1000,
  random: Math.random,
  now: Date.now,
  ...extra,
});

describe('routing', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  async function serve(handler: (url: string) => [number, unknown]): Promise<string> {
    const server = createServer((req, res) => {
      const [status, body] = handler(req.url ?? '');
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }


  it('asks the router with the client identity and rotates through its connectors', async () => {
    let asked = '';
    const url = await serve((u) => {
      asked = u;
      return [200, { mode: 'long', endpoints: ['http://c1', 'http://c2'], pollIntervalMs: 1500, reason: 'gray' }];
    });
    const routing = new Routing(options('http://127.0.0.1:1', { routerUrl: `${url}/`, uid: 'u 1', deviceId: 'd1', version: '2.3.0' }));
    const answer = await routing.ask();
    assert.equal(asked, '/v1/route?uid=u+1&deviceId=d1&version=2.3.0');
    assert.equal(answer.reason, 'gray');
    assert.equal(routing.pollIntervalMs, 1500);
    assert.equal(routing.endpoint, 'http://c1');
    routing.next();
    assert.equal(routing.endpoint, 'http://c2');
    routing.next();
    assert.equal(routing.endpoint, 'http://c1');
  });

  it('polls the front when there is no router: nothing listening, or not served there', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const routing = new Routing(options(closed));
    assert.deepEqual(await routing.ask(), { mode: 'short', endpoints: [], pollIntervalMs: 2000, reason: 'router_unavailable' });
    const notHere = await serve(() => [404, { error: { code: 'not_found', message: 'No such route.' } }]);
    assert.equal((await new Routing(options(notHere)).ask()).reason, 'router_unavailable');
  });

  it('degrades after three failed connects in a row, and waits longer before each new try', () => {
    const routing = new Routing(options('http://x'));
    assert.equal(routing.degraded, false);
    assert.equal(routing.connectFailed(), false);
    assert.equal(routing.connectFailed(), false);
    routing.connected();
    // A success in between starts the count again.
    assert.equal(routing.connectFailed(), false);
    assert.equal(routing.connectFailed(), false);
    assert.equal(routing.connectFailed(), true);
    assert.equal(routing.degraded, true);
    assert.equal(routing.longRetryDelayMs, 1000);
    for (let i = 0; i < 3; i++) routing.connectFailed();
    assert.equal(routing.longRetryDelayMs, 2000);
    for (let i = 0; i < 9; i++) routing.connectFailed();
    assert.equal(routing.longRetryDelayMs, 5000, 'capped at longRetryMaxMs');
  });
});

describe('reconnect backoff: exponential with full jitter', () => {
  it('waits a random share of a doubling cap: 0 .. base * 2^attempt, at most the max', () => {
    assert.equal(fullJitterMs(0, 100, 1000, () => 0), 0);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => fullJitterMs(a, 100, 1000, () => 0.5)), [50, 100, 200, 400, 500, 500]);
    assert.deepEqual([0, 1, 2, 3, 4].map((a) => fullJitterMs(a, 100, 1000, () => 0.999999)), [99, 199, 399, 799, 999]);
  });

  it('the routing counts attempts, and a stable connection (by the injected clock) starts over', () => {
    let now = 1_000_000;
    const draws: number[] = [];
    const routing = new Routing(
      options('http://x', {
        // The top of each range, so the caps show.
        random: () => {
          draws.push(now);
          return 0.999999;
        },
        now: () => now,
      }),
    );
    assert.deepEqual([routing.reconnectDelayMs(), routing.reconnectDelayMs(), routing.reconnectDelayMs()], [99, 199, 399]);
    routing.connected();
    now += STABLE_MS - 1;
    // Up, but not for long: a flapping connector keeps the backoff growing.
    routing.lost();
    assert.equal(routing.reconnectDelayMs(), 799);
    assert.equal(routing.reconnectDelayMs(), 999, 'capped');
    routing.connected();
    now += STABLE_MS;
    routing.lost();
    assert.equal(routing.reconnectDelayMs(), 99, 'after a stable connection, from the first step');
    assert.equal(draws.length, 6, 'one draw per reconnect');
  });

  it('10,000 clients losing the same connector come back spread evenly over the first window', () => {
    const routing = (): Routing => new Routing(options('http://x', { reconnectBaseMs: 1000, reconnectMaxMs: 30_000 }));
    const perQuarter = [0, 0, 0, 0];
    for (let i = 0; i < 10_000; i++) {
      const r = routing();
      r.connected();
      r.lost();
      const delay = r.reconnectDelayMs();
      assert.ok(delay >= 0 && delay < 1000);
      const quarter = Math.floor(delay / 250);
      perQuarter[quarter] = (perQuarter[quarter] ?? 0) + 1;
    }
    console.log(`# first reconnect of 10,000 clients, per 250 ms of the first second: ${perQuarter.join(', ')}`);
    for (const n of perQuarter) assert.ok(n > 2300 && n < 2700, `even: ${perQuarter.join(', ')}`);
  });
});

describe('metrics', () => {
  it('reports in batches of at most 100, with one delivery latency in N, and nothing when off', async () => {
    const bodies: { sdk: string; samples: { kind: string; mode: string; ms?: number }[] }[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        if (req.url === '/v1/client-metrics') bodies.push(JSON.parse(text) as (typeof bodies)[number]);
        res.writeHead(202).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const metrics = new Metrics({ baseUrl, fetch: globalThis.fetch, intervalMs: 60_000, sampleEvery: 10 });
      metrics.start();
      const now = Date.now();
      metrics.delivered(
        Array.from({ length: 25 }, (_, i) => msg('comment', i + 1, `m${i}`, now - 50)),
        'long',
        now,
      );
      for (let i = 0; i < 99; i++) metrics.sample('connect_failed', 'long');
      // 2 delivery samples + 99 = 101: the 100th sample sent a full batch at once.
      await waitFor('a full batch', async () => bodies.length === 1);
      await metrics.stop();
      assert.equal(bodies.length, 2);
      assert.deepEqual(bodies.map((b) => b.samples.length), [100, 1]);
      assert.equal(bodies[0]?.sdk, 'danmaku-js/0.1');
      assert.deepEqual(bodies[0]?.samples.slice(0, 2), [
        { kind: 'delivery', mode: 'long', ms: 50 },
        { kind: 'delivery', mode: 'long', ms: 50 },
      ]);

      const off = new Metrics({ baseUrl, fetch: globalThis.fetch, intervalMs: 0, sampleEvery: 1 });
      off.start();
      off.sample('connect', 'long', 5);
      await off.stop();
      assert.equal(bodies.length, 2);
    } finally {
      server.close();
    }
  });

  it('never throws when the front is gone', async () => {
    const metrics = new Metrics({ baseUrl: `http://127.0.0.1:${await freePort()}`, fetch: globalThis.fetch, intervalMs: 60_000, sampleEvery: 1 });
    metrics.sample('poll_failed', 'short');
    await metrics.stop();
  });
});
