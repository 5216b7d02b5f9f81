import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call, startLivesStack, type LivesStack } from './lives-stack.js';

type Row = [number, number, number, string, string];

const db = testDatabase('players');
let stack: LivesStack;
const room = uniqueRoom('player');
const streamer = tokenFor('st1', 'streamer', [room]);
const viewer = tokenFor('pv1', 'viewer');
let liveId: string;

before(async () => {
  stack = await startLivesStack(
    testConfig({ mysqlUrl: db.url, rateUserMax: 1_000_000, rateIpMax: 1_000_000, replaySettleMs: 1, archiverLingerMs: 0 }),
  );
  const started = await call(stack.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
  assert.equal(started.status, 201);
  liveId = started.body.liveId as string;
});
after(async () => {
  await stack?.stop();
  await db.drop();
});

describe('DPlayer API v3 and the Bilibili XML file', () => {
  test('a DPlayer send goes through the send path: token in the body or the header, its checks, its errors', async () => {
    // DPlayer's own request: token in the body, colour as a number, type 0..2, its video time.
    const sent = await call(stack.url, 'POST', '/v1/dplayer/v3/', {
      body: { token: viewer, id: room, author: 'whoever', time: 12.5, text: 'from dplayer', color: 0xff0000, type: 1 },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    assert.equal(sent.body.code, 0);
    assert.equal(typeof (sent.body.data as { id: string }).id, 'string');

    // By live id, token in the header.
    const byLive = await call(stack.url, 'POST', '/v1/dplayer/v3/', { token: viewer, body: { id: liveId, text: 'by live id', type: 2, color: '#00ff00' } });
    assert.equal(byLive.status, 202, JSON.stringify(byLive.body));

    const noToken = await call(stack.url, 'POST', '/v1/dplayer/v3/', { body: { id: room, text: 'x' } });
    assert.equal(noToken.status, 401);
    assert.deepEqual(Object.keys(noToken.body.error as object), ['code', 'message']);
    assert.equal((noToken.body.error as { code: string }).code, 'missing_token');

    const badToken = await call(stack.url, 'POST', '/v1/dplayer/v3/', { body: { id: room, text: 'x', token: 'nope' } });
    assert.equal((badToken.body.error as { code: string }).code, 'invalid_token');

    const tooLong = await call(stack.url, 'POST', '/v1/dplayer/v3/', { token: viewer, body: { id: room, text: 'x'.repeat(101) } });
    assert.equal(tooLong.status, 400);
    assert.equal((tooLong.body.error as { code: string }).code, 'invalid_request');

    const badType = await call(stack.url, 'POST', '/v1/dplayer/v3/', { token: viewer, body: { id: room, text: 'x', type: 7 } });
    assert.equal(badType.status, 400);

    // The moderation checks of every send apply: a muted user is refused.
    const mute = await call(stack.url, 'POST', `/v1/rooms/${room}/mutes`, { token: streamer, body: { userId: 'pv2', durationSec: 60 } });
    assert.equal(mute.status, 200);
    const muted = await call(stack.url, 'POST', '/v1/dplayer/v3/', { body: { id: room, text: 'hi', token: tokenFor('pv2', 'viewer') } });
    assert.equal(muted.status, 403);
    assert.equal((muted.body.error as { code: string }).code, 'muted');

    await stack.drained();
    const polled = await call(stack.url, 'GET', `/v1/rooms/${room}/messages?types=comment`);
    const got = (polled.body.messages as { content: string; color?: string; mode?: string }[]).map((m) => [m.content, m.color, m.mode]);
    assert.deepEqual(got, [
      ['from dplayer', '#ff0000', 'top'],
      ['by live id', '#00ff00', 'bottom'],
    ], 'DPlayer colour and type become the comment\'s style');
  });

  test('GET v3 lists a live\'s comments in offset order, by live id or by room id, and honours max', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: tokenFor(`u${i % 3}`), body: { type: 'comment', content: `c${i}` } });
      assert.equal(res.status, 202);
    }
    await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: viewer, body: { type: 'gift', giftId: 'rose', count: 1 } });
    await stack.drained();

    const byLive = await call(stack.url, 'GET', `/v1/dplayer/v3/?id=${liveId}`);
    assert.equal(byLive.status, 200);
    assert.equal(byLive.body.code, 0);
    const rows = byLive.body.data as Row[];
    assert.equal(rows.length, 32, 'comments only, gifts are not danmaku');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i]![0] >= rows[i - 1]![0], 'time order');
    for (const [time, type, color, author, text] of rows) {
      assert.ok(time >= 0 && time < 600);
      assert.ok([0, 1, 2].includes(type));
      assert.ok(Number.isInteger(color) && color >= 0 && color <= 0xffffff);
      assert.equal(typeof author, 'string');
      assert.equal(typeof text, 'string');
    }
    const plain = rows.find((r) => r[4] === 'c0')!;
    assert.deepEqual([plain[1], plain[2], plain[3]], [0, 0xffffff, 'name-u0'], 'default white, scroll, the sender name');
    assert.deepEqual(rows.slice(2).map((r) => r[4]), Array.from({ length: 30 }, (_, i) => `c${i}`));
    assert.deepEqual(rows.slice(0, 2).map((r) => [r[1], r[2], r[4]]), [
      [1, 0xff0000, 'from dplayer'],
      [2, 0x00ff00, 'by live id'],
    ], 'style back as DPlayer type and colour');

    const byRoom = await call(stack.url, 'GET', `/v1/dplayer/v3/?id=${room}`);
    assert.deepEqual(byRoom.body.data, rows, 'a room id stands for its live');

    const limited = await call(stack.url, 'GET', `/v1/dplayer/v3/?id=${liveId}&max=5`);
    assert.deepEqual(limited.body.data, rows.slice(0, 5));

    const none = await call(stack.url, 'GET', `/v1/dplayer/v3/?id=${uniqueRoom('empty')}`);
    assert.deepEqual(none.body, { code: 0, data: [] }, 'a room with no live yet has no danmaku');

    const bad = await call(stack.url, 'GET', '/v1/dplayer/v3/?id=a%20b');
    assert.equal(bad.status, 400);
    const missing = await call(stack.url, 'GET', '/v1/dplayer/v3/');
    assert.equal(missing.status, 400);
    assert.equal((missing.body.error as { code: string }).code, 'invalid_request');
  });

  test('the Bilibili XML file: every comment once, escaped, paged through the archive', async () => {
    // Control characters never reach the archive (the send refuses them); markup must be escaped.
    const refused = await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: viewer, body: { type: 'comment', content: 'a\u0001d' } });
    assert.equal(refused.status, 400);
    const tricky = 'a<b>&"c\'d';
    assert.equal((await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: viewer, body: { type: 'comment', content: tricky } })).status, 202);
    // More than one archive page (1000) so the file is written page by page.
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 1100; i++) {
      sends.push(call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: tokenFor(`x${i % 7}`), body: { type: 'comment', content: `bulk ${i}` } }));
      if (sends.length >= 50) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    await stack.drained();

    const res = await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.xml`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/xml/);
    const text = await res.text();
    assert.equal(XMLValidator.validate(text), true, 'well-formed XML');
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, processEntities: true, isArray: (name) => name === 'd' }).parse(text) as {
      i: { d: { p: string; '#text': string }[] };
    };
    const ds = doc.i.d;
    assert.equal(ds.length, 32 + 1 + 1100);
    const ids = new Set<string>();
    let last = -1;
    for (const d of ds) {
      const p = d.p.split(',');
      assert.equal(p.length, 8);
      const time = Number(p[0]);
      assert.ok(time >= last, 'time order');
      last = time;
      assert.ok(['1', '4', '5'].includes(p[1]!));
      assert.equal(p[2], '25');
      assert.ok(Number(p[3]) >= 0 && Number(p[3]) <= 0xffffff);
      assert.ok(Math.abs(Number(p[4]) - Date.now() / 1000) < 600, 'unix time in seconds');
      ids.add(p[7]!);
    }
    assert.equal(ids.size, ds.length, 'every comment once');
    const texts = ds.map((d) => d['#text']);
    assert.ok(texts.includes(tricky), 'markup escaped and read back as text');
    const styled = ds.find((d) => d['#text'] === 'from dplayer')!.p.split(',');
    assert.deepEqual([styled[1], styled[3]], ['5', String(0xff0000)], 'top = Bilibili mode 5, colour in decimal');
    assert.equal(texts.filter((t) => t.startsWith('bulk ')).length, 1100);

    const unknown = await call(stack.url, 'GET', '/v1/lives/lvnope/danmaku.xml');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body.error as { code: string }).code, 'live_not_found');
  });

  test('CORS: the player routes answer any origin by default, the rest of the API none', async () => {
    const origin = 'https://player.example';
    const dp = await fetch(`${stack.url}/v1/dplayer/v3/?id=${liveId}&max=1`, { headers: { origin } });
    assert.equal(dp.headers.get('access-control-allow-origin'), '*');
    assert.equal(dp.headers.get('access-control-allow-credentials'), null);
    const xml = await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.xml`, { headers: { origin } });
    assert.equal(xml.headers.get('access-control-allow-origin'), '*');
    await xml.body?.cancel();
    const preflight = await fetch(`${stack.url}/v1/dplayer/v3/`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Content-Type/i);
    const api = await fetch(`${stack.url}/v1/rooms/${room}`, { headers: { origin } });
    assert.equal(api.status, 200);
    assert.equal(api.headers.get('access-control-allow-origin'), null);
  });
});
