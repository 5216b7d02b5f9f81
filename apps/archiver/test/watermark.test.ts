/**
 * Replay completeness: the archived-up-to watermark. An archiver that cannot write (its MySQL
 * refuses) holds the watermark down, so a finished live's segment is read but never cached while
 * incomplete; once an archiver has caught up, the same read is complete and cached.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Archive, openReplay, replayKeys, type ReplayStack } from '@danmaku/archive';
import { startArchiver } from '@danmaku/archiver';
import { MemoryBus } from '@danmaku/bus';
import { LiveStates } from '@danmaku/lives';
import { MESSAGE_TYPES } from '@danmaku/protocol';
import { createLogger } from '@danmaku/observability';
import { createSendPipeline } from '@danmaku/send';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';

const config = testConfig({ replaySettleMs: 100, replaySegmentMs: 60_000 });
const logger = createLogger('test', 'silent');
const scope = `wm-${randomBytes(4).toString('hex')}/${config.topic}`;
let redis: Redis;
let stack: ReplayStack;
let states: LiveStates;

before(async () => {
  redis = createRedis(config.redisUrl);
  await waitReady(redis);
  states = new LiveStates({ redis, logger });
  stack = openReplay(config, { redis, states, logger, name: 'test', progressScope: scope });
  await stack.archive.ready();
});
after(async () => {
  await stack.close();
  await redis.quit();
});

test('a segment the archiver has not finished is never cached; once it has, it is complete and cached', { timeout: 90_000 }, async () => {
  const bus = new MemoryBus({ partitions: 4, logger });
  // An archiver whose MySQL refuses every connection: it consumes, fails, retries; nothing lands.
  const broken = new Archive('mysql://danmaku:danmaku@127.0.0.1:1/danmaku', { queryTimeoutMs: 500 });
  const stuck = await startArchiver({ bus, archive: broken, topic: config.topic, logger, batchSize: 100, lingerMs: 0, progressScope: scope, progressEveryMs: 100 });
  const mark = async (): Promise<number | null> => stack.archive.archivedThrough(scope, 15_000);

  const room = uniqueRoom('wm');
  const principal = { id: 'wm-user', name: 'wm', role: 'viewer' as const, rooms: [] };
  const live = await stack.lives.start(room, { id: 'wm-streamer', name: 's', role: 'streamer', rooms: [room] });
  const send = createSendPipeline({ bus, topic: config.topic, checks: [states.stamp], systemChecks: [] });
  const total = 30;
  for (let i = 0; i < total; i++) await send.accept(room, { type: 'comment', content: `wm ${i}` }, principal);
  const { endedAt } = await stack.lives.end(room, live.liveId);
  const types = new Set(MESSAGE_TYPES);

  // The stuck archiver cannot even record a watermark (its MySQL is away), so there is none that
  // is fresh: nothing may be taken as finished.
  const w = await mark();
  assert.ok(w === null || w < live.startedAt, `watermark ${w}`);
  // Past the settle window (a span of time by definition, waited exactly): only the watermark holds the segment back.
  await waitFor('the settle window after the end', () => Date.now() - endedAt > config.replaySettleMs);
  const early = await stack.replay.read(live.liveId, { from: 0, types, limit: 1000 });
  assert.equal(early.messages.length, 0, 'nothing is archived yet');
  assert.equal(await redis.exists(replayKeys.segment(live.liveId, 0)), 0, 'an unfinished segment is not cached in the replay Redis');

  // The stuck archiver leaves; a healthy one takes the same group and catches up.
  await stuck.stop();
  await broken.close();
  const healthy = await startArchiver({ bus, archive: stack.archive, topic: config.topic, logger, batchSize: 100, lingerMs: 0, progressScope: scope, progressEveryMs: 100 });
  try {
    await waitFor('the archiver to catch up', async () => (await healthy.lag()) === 0 && ((await mark()) ?? 0) > Date.now() - 10_000, 30_000);
    const page = await waitFor('the replay to be complete', async () => {
      const read = await stack.replay.read(live.liveId, { from: 0, types, limit: 1000 });
      return read.messages.length === total ? read : null;
    }, 10_000);
    assert.equal(page.messages.length, total);
    // Cached once the watermark passes the live's end and its slack for late-stamped sends.
    await waitFor('the finished segment to be cached', async () => {
      await stack.replay.read(live.liveId, { from: 0, types, limit: 1000 });
      return (await redis.exists(replayKeys.segment(live.liveId, 0))) === 1;
    }, 20_000, 200);
  } finally {
    await healthy.stop();
  }
  // A stopped archiver takes its watermark with it.
  assert.equal(await mark(), null);
});
