import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import { clientMessageId } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { sleep, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call } from './lives-stack.js';

interface Msg {
  id: string;
  type: string;
  content?: string;
  user: { id: string };
}

const db = testDatabase('moderation');
let system: Standalone;
const sockets: Socket[] = [];

before(async () => {
  system = await startStandalone(
    testConfig({
      mysqlUrl: db.url,
      // A short settle window only holds while the archiver writes at once (no linger).
      replaySettleMs: 100,
      archiverLingerMs: 0,
      replaySegmentMs: 1000,
      rateUserMax: 1000,
      rateIpMax: 10_000,
      sensitiveWords: ['badword', '坏话'],
      sensitiveMode: 'replace',
    }),
    createLogger('test', 'silent'),
  );
});
after(async () => {
  for (const s of sockets) s.close();
  await system?.stop();
  await db.drop();
});

const send = (room: string, token: string, content: string) => call(system.url, 'POST', `/v1/rooms/${room}/messages`, { token, body: { type: 'comment', content } });
const poll = async (room: string, types = 'comment'): Promise<Msg[]> => (await call(system.url, 'GET', `/v1/rooms/${room}/messages?types=${types}`)).body.messages as Msg[];
const code = (res: { body: Record<string, unknown> }): string => (res.body.error as { code: string } | undefined)?.code ?? '';

describe('streamer tools are for the streamer of the room and admins', () => {
  test('a viewer token (or another room\'s streamer) gets 403 on every tool; no token gets 401', async () => {
    const room = uniqueRoom('perm');
    const viewer = tokenFor('viewer-x');
    const otherStreamer = tokenFor('streamer-y', 'streamer', ['some-other-room']);
    const tools: [string, string, unknown?][] = [
      ['POST', `/v1/rooms/${room}/lives`],
      ['POST', `/v1/rooms/${room}/lives/lvabc/end`],
      ['POST', `/v1/rooms/${room}/mutes`, { userId: 'u', durationSec: 10 }],
      ['DELETE', `/v1/rooms/${room}/mutes/u`],
      ['POST', `/v1/rooms/${room}/bans`, { userId: 'u' }],
      ['DELETE', `/v1/rooms/${room}/bans/u`],
      ['DELETE', `/v1/rooms/${room}/messages/abc`],
      ['PUT', `/v1/rooms/${room}/slow-mode`, { seconds: 5 }],
      ['POST', `/v1/rooms/${room}/notice`, { content: 'hi' }],
      ['DELETE', `/v1/rooms/${room}/notice`],
      ['GET', `/v1/rooms/${room}/stats`],
    ];
    for (const [method, path, body] of tools) {
      for (const token of [viewer, otherStreamer]) {
        const res = await call(system.url, method, path, { token, body });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(code(res), 'forbidden');
      }
      assert.equal((await call(system.url, method, path, { body })).status, 401, `${method} ${path} without a token`);
    }
    const admin = tokenFor('admin-z', 'admin');
    assert.equal((await call(system.url, 'GET', `/v1/rooms/${room}/stats`, { token: admin })).status, 200, 'admins may');
  });
});

describe('mute, ban, slow mode', () => {
  test('a muted user gets 403 muted until the mute expires', async () => {
    const room = uniqueRoom('mute');
    const streamer = tokenFor('s-mute', 'streamer', [room]);
    const muted = tokenFor('loud');
    const other = tokenFor('quiet');
    const res = await call(system.url, 'POST', `/v1/rooms/${room}/mutes`, { token: streamer, body: { userId: 'loud', durationSec: 2 } });
    assert.equal(res.status, 200);
    const refused = await send(room, muted, 'let me talk');
    assert.equal(refused.status, 403);
    assert.equal(code(refused), 'muted');
    assert.equal((await send(room, other, 'I can talk')).status, 202, 'only that user');
    assert.equal((await call(system.url, 'POST', `/v1/rooms/${room}/mutes`, { token: streamer, body: { userId: 'loud', durationSec: 0 } })).status, 400);
    await waitFor('the mute to expire', async () => (await send(room, muted, 'back again')).status === 202, 5000, 200);
    const until = (res.body.mutedUntil as number) - 50;
    assert.ok(Date.now() >= until, 'not before the mute ended');

    // Unmute ends a mute at once.
    await call(system.url, 'POST', `/v1/rooms/${room}/mutes`, { token: streamer, body: { userId: 'loud', durationSec: 600 } });
    assert.equal((await send(room, muted, 'x')).status, 403);
    assert.equal((await call(system.url, 'DELETE', `/v1/rooms/${room}/mutes/loud`, { token: streamer })).status, 200);
    assert.equal((await send(room, muted, 'y')).status, 202);
  });

  test('a banned user gets 403 banned on send, enter and socket join; unban lets them back', async () => {
    const room = uniqueRoom('ban');
    const streamer = tokenFor('s-ban', 'streamer', [room]);
    const troll = tokenFor('troll');
    assert.equal((await call(system.url, 'POST', `/v1/rooms/${room}/bans`, { token: streamer, body: { userId: 'troll' } })).status, 200);
    const refused = await send(room, troll, 'hi');
    assert.equal(refused.status, 403);
    assert.equal(code(refused), 'banned');
    const enter = await call(system.url, 'POST', `/v1/rooms/${room}/enter`, { token: troll });
    assert.equal(enter.status, 403);
    assert.equal(code(enter), 'banned');
    const socket = await connect(troll);
    const ack = (await socket.timeout(5000).emitWithAck('join', { roomId: room })) as { ok: boolean; error?: { code: string } };
    assert.equal(ack.ok, false);
    assert.equal(ack.error?.code, 'banned');
    assert.equal((await call(system.url, 'DELETE', `/v1/rooms/${room}/bans/troll`, { token: streamer })).status, 200);
    assert.equal((await send(room, troll, 'sorry')).status, 202);
  });

  test('slow mode refuses the second message in the window with 429 and Retry-After', async () => {
    const room = uniqueRoom('slow');
    const streamer = tokenFor('s-slow', 'streamer', [room]);
    const viewer = tokenFor('fast-typer');
    assert.equal((await call(system.url, 'PUT', `/v1/rooms/${room}/slow-mode`, { token: streamer, body: { seconds: 2 } })).status, 200);
    assert.equal((await send(room, viewer, 'one')).status, 202);
    const second = await send(room, viewer, 'two');
    assert.equal(second.status, 429);
    assert.equal(code(second), 'slow_mode');
    const retryAfter = Number(second.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
    assert.equal((await send(room, tokenFor('someone-else'), 'me too')).status, 202, 'per user');
    assert.equal((await send(room, streamer, 'streamer')).status, 202);
    assert.equal((await send(room, streamer, 'is exempt')).status, 202);
    // What Retry-After promises is itself under test: a client that waits that long gets through.
    await sleep(retryAfter * 1000 + 100);
    assert.equal((await send(room, viewer, 'three')).status, 202, 'after the wait');
    await call(system.url, 'PUT', `/v1/rooms/${room}/slow-mode`, { token: streamer, body: { seconds: 0 } });
    assert.equal((await send(room, viewer, 'four')).status, 202, 'slow mode off');
  });
});

function connect(token: string): Promise<Socket> {
  const socket = io(system.url, { transports: ['websocket'], reconnection: false, auth: { token } });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

describe('delete a message', () => {
  test('it vanishes from polls, from connected clients and from replay (cached segments too)', async () => {
    const room = uniqueRoom('del');
    const streamer = tokenFor('s-del', 'streamer', [room]);
    const viewer = tokenFor('v-del');
    const live = await call(system.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(live.status, 201);
    const liveId = live.body.liveId as string;

    const watcher = await connect(tokenFor('watcher'));
    const deletedEvents: { roomId: string; ids: string[] }[] = [];
    watcher.on('deleted', (e: { roomId: string; ids: string[] }) => deletedEvents.push(e));
    const joined = (await watcher.timeout(5000).emitWithAck('join', { roomId: room, types: ['comment'] })) as { ok: boolean };
    assert.equal(joined.ok, true);

    const ids: string[] = [];
    for (const text of ['keep 1', 'delete me', 'keep 2']) ids.push((await send(room, viewer, text)).body.id as string);
    await waitFor('messages visible', async () => (await poll(room)).length === 3);
    const [, doomed] = ids as [string, string, string];

    // End the live and read its replay once, so the segment is cached before the delete.
    assert.equal((await call(system.url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer })).status, 200);
    await waitFor('archived', async () => {
      const page = await call(system.url, 'GET', `/v1/lives/${liveId}/messages?types=comment`);
      return (page.body.messages as Msg[]).length === 3;
    });

    const del = await call(system.url, 'DELETE', `/v1/rooms/${room}/messages/${doomed}`, { token: streamer });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.removedFromLive, true);

    assert.deepEqual((await poll(room)).map((m) => m.id), ids.filter((id) => id !== doomed), 'gone from polls');
    await waitFor('connected client told', () => deletedEvents.some((e) => e.roomId === room && e.ids.includes(doomed)));
    const replay = await call(system.url, 'GET', `/v1/lives/${liveId}/messages?types=comment`);
    assert.deepEqual((replay.body.messages as Msg[]).map((m) => m.id), ids.filter((id) => id !== doomed), 'gone from replay');

    const again = await call(system.url, 'DELETE', `/v1/rooms/${room}/messages/${doomed}`, { token: streamer });
    assert.equal(again.status, 200, 'deleting twice is harmless');
    assert.equal(again.body.removedFromLive, false);
  });
});

describe('delete a message still on its way', () => {
  test('a delete that arrives before the message is stored still removes it when it lands', async () => {
    const room = uniqueRoom('early');
    const streamer = tokenFor('s-early', 'streamer', [room]);
    // A clientMsgId fixes the id in advance, so the delete can come first.
    const id = clientMessageId(room, 'v-early', 'k1');
    const del = await call(system.url, 'DELETE', `/v1/rooms/${room}/messages/${id}`, { token: streamer });
    assert.equal(del.status, 200);
    assert.equal(del.body.removedFromLive, false);
    const sent = await call(system.url, 'POST', `/v1/rooms/${room}/messages`, { token: tokenFor('v-early'), body: { type: 'comment', content: 'too late', clientMsgId: 'k1' } });
    assert.equal(sent.body.id, id);
    const other = await send(room, tokenFor('v-other'), 'stays');
    await waitFor('the other message stored', async () => (await poll(room)).some((m) => m.id === other.body.id));
    await waitFor('the deleted one gone', async () => (await poll(room)).every((m) => m.id !== id), 5000);
  });
});

describe('pinned notice, word filter, stats', () => {
  test('a notice is a system message in the room and stays readable until unpinned', async () => {
    const room = uniqueRoom('notice');
    const streamer = tokenFor('s-notice', 'streamer', [room]);
    const res = await call(system.url, 'POST', `/v1/rooms/${room}/notice`, { token: streamer, body: { content: 'Giveaway at 9!' } });
    assert.equal(res.status, 201);
    await waitFor('system message', async () => (await poll(room, 'system')).some((m) => m.id === res.body.id && m.content === 'Giveaway at 9!'));
    const read = await call(system.url, 'GET', `/v1/rooms/${room}/notice`);
    assert.equal((read.body.notice as { content: string }).content, 'Giveaway at 9!');
    assert.equal((await call(system.url, 'DELETE', `/v1/rooms/${room}/notice`, { token: streamer })).status, 200);
    assert.equal((await call(system.url, 'GET', `/v1/rooms/${room}/notice`)).body.notice, null);
  });

  test('sensitive words are masked (replace mode) whatever their case or width', async () => {
    const room = uniqueRoom('words');
    const res = await send(room, tokenFor('potty'), 'you BadWord and ｂａｄｗｏｒｄ 说坏话');
    assert.equal(res.status, 202);
    await waitFor('masked message', async () => (await poll(room)).length === 1);
    assert.equal((await poll(room))[0]?.content, 'you ******* and ******* 说**');
  });

  test('room stats: online, messages/s, likes, gear, moderation state', async () => {
    const room = uniqueRoom('stats');
    const streamer = tokenFor('s-stats', 'streamer', [room]);
    await call(system.url, 'POST', `/v1/rooms/${room}/enter`, { token: tokenFor('a') });
    await call(system.url, 'POST', `/v1/rooms/${room}/enter`, { token: tokenFor('b') });
    for (let i = 0; i < 5; i++) await send(room, tokenFor(`c${i}`), `msg ${i}`);
    await call(system.url, 'POST', `/v1/rooms/${room}/mutes`, { token: streamer, body: { userId: 'c1', durationSec: 60 } });
    await call(system.url, 'PUT', `/v1/rooms/${room}/slow-mode`, { token: streamer, body: { seconds: 3 } });
    await waitFor('messages stored', async () => (await poll(room)).length === 5);
    const stats = await call(system.url, 'GET', `/v1/rooms/${room}/stats`, { token: streamer });
    assert.equal(stats.status, 200);
    assert.equal(stats.body.online, 2);
    assert.equal(stats.body.muted, 1);
    assert.equal(stats.body.slowModeSec, 3);
    assert.equal(typeof stats.body.likes, 'number');
    assert.equal(stats.body.gear, 1);
    assert.ok((stats.body.messagesPerSecond as number) > 0);
    assert.equal((stats.body.types as Record<string, { total: number }>).comment?.total, 5);
  });
});
