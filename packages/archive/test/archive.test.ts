import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Archive, MIGRATIONS, migrate, schemaVersion, toArchiveRow } from '@danmaku/archive';
import { ApiError } from '@danmaku/model';
import { testDatabase } from './db.js';

const db = testDatabase('archive');
const archive = new Archive(db.url);
after(async () => {
  await archive.close();
  await db.drop();
});

const body = (id: string, liveId: string | null, offsetMs: number, type = 'comment', roomId = 'r1') =>
  JSON.stringify({ id, roomId, type, ts: 1_000_000 + offsetMs, user: { id: 'u1', name: 'U' }, content: `c-${id}`, ...(liveId ? { liveId, offsetMs } : {}) });
const row = (...args: Parameters<typeof body>) => {
  const r = toArchiveRow(body(...args));
  assert.ok(r);
  return r;
};

describe('archive schema', () => {
  test('migrations create the database and are applied once, in order', async () => {
    await archive.ready();
    assert.equal(await schemaVersion(archive.pool), MIGRATIONS[MIGRATIONS.length - 1]?.version);
    assert.deepEqual(await migrate(archive.pool), [], 'a second run applies nothing');
    const [indexes] = await archive.pool.query<import('mysql2').RowDataPacket[]>("SHOW INDEX FROM messages WHERE Key_name = 'PRIMARY'");
    assert.deepEqual(indexes.map((i) => i.Column_name), ['live_id', 'offset_ms', 'type', 'id'], 'a live is read by offset window');
  });
});

describe('archive writes', () => {
  test('a batch is idempotent by id: redelivery and overlap add nothing', async () => {
    const rows = [row('a1', 'L1', 10), row('a2', 'L1', 20, 'gift'), row('a3', null, 0)];
    assert.equal(await archive.insert(rows), 3);
    assert.equal(await archive.insert(rows), 0);
    assert.equal(await archive.insert([row('a2', 'L1', 20, 'gift'), row('a4', 'L1', 30)]), 1);
    assert.equal(await archive.countLive('L1'), 3);
  });

  test('ids differing only in case are two messages (binary collation)', async () => {
    assert.equal(await archive.insert([row('caseX', 'L2', 1), row('casex', 'L2', 2)]), 2);
  });

  test('records that are not messages are refused by the row parser', () => {
    assert.equal(toArchiveRow('not json'), null);
    assert.equal(toArchiveRow(JSON.stringify({ id: 'x', roomId: 'r', type: 'nope', ts: 1, user: { id: 'u' } })), null);
  });
});

describe('archive reads', () => {
  test('a window is offset-ordered, half-open, and drops tombstoned messages of that room only', async () => {
    await archive.insert([row('w3', 'L3', 300), row('w1', 'L3', 100), row('w2', 'L3', 200, 'gift'), row('w4', 'L3', 400)]);
    let window = await archive.readWindow('L3', 100, 400);
    assert.deepEqual(window.map((r) => r.offsetMs), [100, 200, 300]);
    assert.deepEqual(window.map((r) => JSON.parse(r.body).id), ['w1', 'w2', 'w3']);
    assert.equal(window[1]?.type, 'gift');

    assert.deepEqual(await archive.tombstone('other-room', 'w2', 'mod'), { liveId: null, offsetMs: null });
    window = await archive.readWindow('L3', 0, 1000);
    assert.equal(window.length, 4, 'a tombstone for another room does not hide it');

    assert.deepEqual(await archive.tombstone('r1', 'w2', 'mod'), { liveId: 'L3', offsetMs: 200 });
    window = await archive.readWindow('L3', 0, 1000);
    assert.deepEqual(window.map((r) => JSON.parse(r.body).id), ['w1', 'w3', 'w4']);
  });

  test('a tombstone written before the message is archived still hides it', async () => {
    await archive.tombstone('r1', 'early', 'mod');
    await archive.insert([row('early', 'L4', 5), row('kept', 'L4', 6)]);
    assert.deepEqual((await archive.readWindow('L4', 0, 100)).map((r) => JSON.parse(r.body).id), ['kept']);
  });

  test('lives: start, end once, unknown', async () => {
    await archive.recordLiveStart({ liveId: 'LV1', roomId: 'r9', startedAt: 1000, endedAt: null }, 'streamer');
    assert.deepEqual(await archive.live('LV1'), { liveId: 'LV1', roomId: 'r9', startedAt: 1000, endedAt: null });
    assert.equal((await archive.recordLiveEnd('LV1', 5000))?.endedAt, 5000);
    assert.equal((await archive.recordLiveEnd('LV1', 9000))?.endedAt, 5000, 'the first end stands');
    assert.equal(await archive.live('nope'), null);
  });

  test('MySQL away: reads fail fast with a 503, writes reject (the bus redelivers)', async () => {
    const down = new Archive('mysql://danmaku:danmaku@127.0.0.1:1/none');
    const started = Date.now();
    await assert.rejects(down.readWindow('L1', 0, 10), (err: unknown) => err instanceof ApiError && err.status === 503);
    await assert.rejects(down.insert([row('z', 'L1', 1)]));
    assert.ok(Date.now() - started < 3000);
    await down.close();
  });
});
