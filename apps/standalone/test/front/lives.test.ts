import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Archive } from '@danmaku/archive';
import { Lives } from '@danmaku/lives';
import { ApiError } from '@danmaku/model';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call, startLivesStack, type LivesStack } from './lives-stack.js';

interface Msg {
  id: string;
  liveId?: string;
  offsetMs?: number;
  ts: number;
}

const db = testDatabase('lives');
let a: LivesStack;
let b: LivesStack;

before(async () => {
  // Two fronts sharing Redis and MySQL, each with its own per-process live cache.
  const config = testConfig({ mysqlUrl: db.url });
  a = await startLivesStack(config);
  b = await startLivesStack(config);
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await db.drop();
});

const send = (front: LivesStack, room: string, token: string, content: string) =>
  call(front.url, 'POST', `/v1/rooms/${room}/messages`, { token, body: { type: 'comment', content } });

describe('lives', () => {
  test('start on one front, stamp on the other, end: liveId and offsetMs on exactly the messages of the live', async () => {
    const room = uniqueRoom('live');
    const streamer = tokenFor('s-live', 'streamer', [room]);
    const viewer = tokenFor('v-live');
    assert.equal((await call(b.url, 'GET', `/v1/rooms/${room}`)).body.live, null, 'front b caches "not live"');
    const before = await send(b, room, viewer, 'before');

    const started = await call(a.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(started.status, 201);
    const { liveId, startedAt } = started.body as { liveId: string; startedAt: number };
    // Front b learns of it from the live event (or, at worst, its one-second cache expiring).
    await waitFor('front b sees the live', async () => ((await call(b.url, 'GET', `/v1/rooms/${room}`)).body.live as { liveId?: string } | null)?.liveId === liveId, 3000);
    const during = await send(b, room, viewer, 'during');
    assert.equal(during.status, 202);

    const ended = await call(a.url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer });
    assert.equal(ended.status, 200);
    await waitFor('front b sees the end', async () => (await call(b.url, 'GET', `/v1/rooms/${room}`)).body.live === null, 3000);
    const afterEnd = await send(b, room, viewer, 'after');

    await waitFor('stored', async () => ((await call(a.url, 'GET', `/v1/rooms/${room}/messages?types=comment`)).body.messages as Msg[]).length === 3);
    const messages = (await call(a.url, 'GET', `/v1/rooms/${room}/messages?types=comment`)).body.messages as Msg[];
    const byId = new Map(messages.map((m) => [m.id, m]));
    const mid = byId.get(during.body.id as string);
    assert.equal(mid?.liveId, liveId);
    assert.equal(mid?.offsetMs, (mid?.ts ?? 0) - startedAt);
    assert.ok((mid?.offsetMs ?? -1) >= 0);
    assert.equal(byId.get(before.body.id as string)?.liveId, undefined);
    assert.equal(byId.get(afterEnd.body.id as string)?.liveId, undefined);

    // The live's record: GET /v1/lives/:liveId.
    const record = await call(b.url, 'GET', `/v1/lives/${liveId}`);
    assert.equal(record.status, 200);
    assert.equal(record.body.roomId, room);
    assert.equal(record.body.durationMs, (ended.body.endedAt as number) - startedAt);
  });

  test('409 when a live is on or already ended, 404 for an unknown live or one of another room', async () => {
    const room = uniqueRoom('live409');
    const other = uniqueRoom('live409b');
    const streamer = tokenFor('s-409', 'streamer', [room, other]);
    const first = await call(a.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(first.status, 201);
    const again = await call(b.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(again.status, 409);
    assert.equal((again.body.error as { code: string }).code, 'live_already_on');
    const liveId = first.body.liveId as string;
    assert.equal((await call(a.url, 'POST', `/v1/rooms/${other}/lives/${liveId}/end`, { token: streamer })).status, 404, 'not a live of that room');
    assert.equal((await call(a.url, 'POST', `/v1/rooms/${room}/lives/lvunknown/end`, { token: streamer })).status, 404);
    assert.equal((await call(a.url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer })).status, 200);
    const twice = await call(b.url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer });
    assert.equal(twice.status, 409);
    assert.equal((twice.body.error as { code: string }).code, 'live_already_ended');
    const second = await call(b.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(second.status, 201, 'a new live after the end');
    const list = await call(a.url, 'GET', `/v1/rooms/${room}/lives`);
    assert.deepEqual((list.body.lives as { liveId: string }[]).map((l) => l.liveId), [second.body.liveId, liveId], 'newest first');
    assert.equal((list.body.lives as { endedAt: number | null }[])[0]?.endedAt, null);
  });

  test('video links: playbackUrl at start, set and cleared later, recordingUrl after the end; seen on every front', async () => {
    const room = uniqueRoom('livevideo');
    const streamer = tokenFor('s-video', 'streamer', [room]);
    const bad = await call(a.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer, body: { playbackUrl: 'javascript:alert(1)' } });
    assert.equal(bad.status, 400, 'only http(s) links');
    const started = await call(a.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer, body: { playbackUrl: 'https://cdn.example/live/index.m3u8' } });
    assert.equal(started.status, 201);
    assert.equal(started.body.playbackUrl, 'https://cdn.example/live/index.m3u8');
    const liveId = started.body.liveId as string;
    const path = `/v1/rooms/${room}/lives/${liveId}`;
    assert.equal((await call(b.url, 'GET', `/v1/lives/${liveId}`)).body.playbackUrl, 'https://cdn.example/live/index.m3u8');

    assert.equal((await call(a.url, 'PATCH', path, { token: tokenFor('v-video'), body: { playbackUrl: null } })).status, 403, 'viewers cannot');
    assert.equal((await call(a.url, 'PATCH', path, { token: streamer, body: {} })).status, 400, 'nothing to change');
    assert.equal((await call(a.url, 'PATCH', path, { token: streamer, body: { other: 1 } })).status, 400);
    assert.equal((await call(a.url, 'PATCH', `/v1/rooms/${room}/lives/lvnope`, { token: streamer, body: { playbackUrl: null } })).status, 404);

    const moved = await call(a.url, 'PATCH', path, { token: streamer, body: { playbackUrl: 'https://cdn.example/live/v2.webm' } });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.playbackUrl, 'https://cdn.example/live/v2.webm');
    await call(a.url, 'POST', `${path}/end`, { token: streamer });
    const recorded = await call(b.url, 'PATCH', path, { token: streamer, body: { recordingUrl: 'https://cdn.example/vod/rec.mp4', playbackUrl: null } });
    assert.equal(recorded.status, 200);
    // The other front cached the live: the change is announced, so it reads the new links.
    await waitFor('front a sees the recording', async () => (await call(a.url, 'GET', `/v1/lives/${liveId}`)).body.recordingUrl === 'https://cdn.example/vod/rec.mp4', 5000);
    const record = await call(a.url, 'GET', `/v1/lives/${liveId}`);
    assert.equal(record.body.playbackUrl, null);
    const list = await call(a.url, 'GET', `/v1/rooms/${room}/lives`);
    assert.equal((list.body.lives as { recordingUrl: string | null }[])[0]?.recordingUrl, 'https://cdn.example/vod/rec.mp4');
  });

  test('MySQL down: starting a live answers 503 fast and leaves the room not live', async () => {
    const redis: Redis = createRedis(testConfig().redisUrl);
    await waitReady(redis);
    const archive = new Archive('mysql://danmaku:danmaku@127.0.0.1:1/nothing');
    const lives = new Lives({ redis, records: archive });
    const room = uniqueRoom('live503');
    const started = Date.now();
    await assert.rejects(lives.start(room, { id: 's', name: 's', role: 'streamer', rooms: [room] }), (err: unknown) => err instanceof ApiError && err.status === 503);
    assert.ok(Date.now() - started < 3000);
    assert.equal(await lives.current(room), null);
    await archive.close();
    await redis.quit();
  });
});
