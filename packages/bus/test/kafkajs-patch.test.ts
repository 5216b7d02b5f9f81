/**
 * The fence around patches/kafkajs+2.2.4.patch (applied by `patch-package` on install): kafkajs
 * 2.2.4's fetch manager, stopped while it was rebuilding its fetchers after a broker change (a
 * rolling restart of the brokers does both at once), started fetchers for a stopped runner. Their
 * fetch answers [] at once, so they spun on microtasks forever: the role's event loop starved, no
 * timer fired, nothing was consumed or logged again. This drives kafkajs's own fetch manager
 * through that sequence; it fails on the unpatched file, and when kafkajs is not the version the
 * patch was made for (then check the patch still applies and is still needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

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
type CreateFetchManager = (options: { logger: QuietLogger; getNodeIds: () => number[]; fetch: (nodeId: number) => Promise<unknown[]>; handler: () => Promise<void>; concurrency: number }) => FetchManager;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
