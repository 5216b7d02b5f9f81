/**
 * The fence around patches/kafkajs+2.2.4.patch (applied by `patch-package` on install), which
 * mends two faults of kafkajs 2.2.4.
 *
 * Its fetch manager, stopped while it was rebuilding its fetchers after a broker change (a
 * rolling restart of the brokers does both at once), started fetchers for a stopped runner. Their
 * fetch answers [] at once, so they spun on microtasks forever: the role's event loop starved, no
 * timer fired, nothing was consumed or logged again. This drives kafkajs's own fetch manager
 * through that sequence.
 *
 * Its request queue (one per broker connection), after every answer, scheduled a check of its
 * pending requests even when none was pending and nothing throttled it: the check 1 ms away
 * scheduled the next, and so on, a timer every millisecond per connection for the life of the
 * process (Node 24 warns "TimeoutNegativeWarning" once). Over a broker this doubled the idle CPU
 * of a server (43-50 ms/s against 20-23 with the patch).
 *
 * Each test fails on the unpatched file, and the first when kafkajs is not the version the patch
 * was made for (then check the patch still applies and is still needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { sleep, waitFor } from '@danmaku/testkit';

const require = createRequire(import.meta.url);

interface FetchManager {
  start(): Promise<void>;
  stop(): Promise<void>;
}
interface QuietLogger {
  namespace(): QuietLogger;
  debug(): void;
  info(): void;
  warn(): void;
  error(): void;
}
interface QueueEntry {
  correlationId: number;
  apiKey: number;
  apiName: string;
  apiVersion: number;
  resolve(answer: unknown): void;
  reject(err: unknown): void;
}
interface RequestQueue {
  push(request: { entry: QueueEntry; expectResponse: boolean; sendRequest: () => void }): void;
  fulfillRequest(answer: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(ms: number): void;
  checkPendingRequests(): void;
  destroy(): void;
}
type RequestQueueClass = new (options: { maxInFlightRequests: number; requestTimeout: number; enforceRequestTimeout: boolean; clientId: string; broker: string; logger: QuietLogger }) => RequestQueue;
type CreateFetchManager = (options: { logger: QuietLogger; getNodeIds: () => number[]; fetch: (nodeId: number) => Promise<unknown[]>; handler: () => Promise<void>; concurrency: number }) => FetchManager;


test('kafkajs is the version the patch was made for', () => {
  const pkg = JSON.parse(readFileSync(require.resolve('kafkajs/package.json'), 'utf8')) as { version: string };
  assert.equal(pkg.version, '2.2.4', 'kafkajs changed: check that patches/kafkajs+*.patch still applies and is still needed, then rename it and update this test');
});

test('a fetch manager stopped while it rebuilds its fetchers stops, instead of spinning', { timeout: 20_000 }, async () => {
  const createFetchManager = require('kafkajs/src/consumer/fetchManager.js') as CreateFetchManager;
  const quiet: QuietLogger = { namespace: () => quiet, debug() {}, info() {}, warn() {}, error() {} };
  let nodeIds = [1, 2];
  let running = true;
  let fetchesWhileStopped = 0;
  const manager = createFetchManager({
    logger: quiet,
    getNodeIds: () => nodeIds,
    // As the runner's fetch: nothing, at once, once the runner stopped; else a long poll from
    // broker 1 and short ones from broker 2.
    fetch: async (nodeId) => {
      if (!running) {
        // Bounded, so an unpatched kafkajs fails this test instead of hanging it.
        if (++fetchesWhileStopped > 100_000) throw new Error('fetchers of a stopped runner are spinning');
        return [];
      }
      await sleep(nodeId === 1 ? 400 : 5);
      return [];
    },
    handler: async () => undefined,
    concurrency: 1,
  });
  const started = manager.start();
  await sleep(50);
  // Broker 2 leaves the cluster: broker 2's fetcher throws a rebalance of the fetchers at its next
  // fetch, and the manager waits for broker 1's long poll before building new ones...
  nodeIds = [1, 3];
  await sleep(30);
  // ...when the runner stops, as kafkajs's consumer.disconnect() does.
  running = false;
  await manager.stop();
  await assert.doesNotReject(started, 'the manager ends once stopped');
  assert.ok(fetchesWhileStopped <= 2, `no fetcher kept fetching for the stopped runner (${fetchesWhileStopped} fetches)`);
});

test('a request queue with nothing pending schedules no checks, and a throttled request is still sent', { timeout: 10_000 }, async () => {
  const RequestQueueOf = require('kafkajs/src/network/requestQueue/index.js') as RequestQueueClass;
  const quiet: QuietLogger = { namespace: () => quiet, debug() {}, info() {}, warn() {}, error() {} };
  const queue = new RequestQueueOf({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger: quiet });
  const sent: number[] = [];
  const answered: number[] = [];
  const request = (correlationId: number) => ({
    entry: { correlationId, apiKey: 1, apiName: 'Fetch', apiVersion: 11, resolve: () => answered.push(correlationId), reject: () => undefined },
    expectResponse: true,
    sendRequest: () => sent.push(correlationId),
  });
  // The one in flight allowed: the second waits in the queue until the first is answered.
  queue.push(request(1));
  queue.push(request(2));
  assert.deepEqual(sent, [1]);
  queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
  assert.deepEqual(sent, [1, 2], 'the waiting request goes out when the first is answered');
  queue.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
  assert.deepEqual(answered, [1, 2]);
  // Nothing pending, nothing throttled: nothing to check, so no timer runs the check.
  let checks = 0;
  let stopped = false;
  const check = queue.checkPendingRequests.bind(queue);
  queue.checkPendingRequests = () => {
    checks++;
    // Ends the loop of an unpatched queue once counted, so the failed test does not keep the process alive.
    if (!stopped) check();
  };
  await sleep(100);
  stopped = true;
  assert.ok(checks <= 1, `no check loop while nothing is pending (${checks} checks in 100 ms; unpatched, about one per ms)`);
  // A broker's throttle: a request pushed meanwhile waits for it, then goes out by itself.
  stopped = false;
  queue.maybeThrottle(50);
  queue.push(request(3));
  assert.deepEqual(sent, [1, 2], 'held while throttled');
  await waitFor('the throttled request to go out', () => sent.includes(3), 2_000, 5);
  queue.fulfillRequest({ correlationId: 3, payload: Buffer.alloc(0), size: 0 });
  assert.deepEqual(answered, [1, 2, 3]);
  queue.destroy();
});
