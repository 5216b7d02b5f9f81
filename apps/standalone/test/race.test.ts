import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { runRace, testConfig } from '@danmaku/testkit';
import { startStandalone } from '@danmaku/standalone';

test('Meipai race over the in-memory bus: 8 writers, 8 pollers, 5,200 messages, each seen once in seq order', async () => {
  // A small room on purpose: big rooms sample comments by design, and no rate limit.
  const config = testConfig({ retention: 20_000, bigRoomPollRate: 1e9, bigRoomOnline: 1e9, rateUserMax: 1e9, rateIpMax: 1e9 });
  const system = await startStandalone(config, createLogger('test', 'silent'));
  try {
    const outcome = await runRace(system.url, { writers: 8, pollers: 8, messagesPerWriter: 650, config });
    process.stdout.write(`# race: writes ${outcome.writeMs} ms, all seen by all pollers ${outcome.totalMs} ms, ${outcome.polls} polls\n`);
    assert.equal(outcome.accepted, 5200);
    assert.deepEqual(outcome.seen, Array(8).fill(5200));
  } finally {
    await system.stop();
  }
});
