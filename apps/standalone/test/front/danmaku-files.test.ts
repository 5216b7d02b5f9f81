/**
 * A live's danmaku for local players and seek bars, and danmaku brought from elsewhere: real
 * comments sent through the send path plus a Bilibili XML file imported into the same live. The
 * replay lists both, the density adds up to it, the ASS file renders in libass (ffmpeg's `ass`
 * filter over a generated video) with each comment where and when it belongs, and importing the
 * file again adds nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';
import { testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call, startLivesStack, type LivesStack } from './lives-stack.js';

const run = promisify(execFile);

interface Replayed {
  id: string;
  content: string;
  offsetMs: number;
  color?: string;
  mode?: string;
  user: { id: string; name: string };
}

const db = testDatabase('files');
let stack: LivesStack;
let dir: string;
const room = uniqueRoom('files');
const streamer = tokenFor('fs1', 'streamer', [room]);
const viewer = tokenFor('fv1', 'viewer');
let liveId: string;

/** Live comments: white, scrolling, in the first second or two of the live. */
const LIVE_TEXTS = ['first!', '前方高能 🔥', 'hello {world} \\N not a break'];

/** The imported file: places and colours the ASS test looks for, 20 s after the live comments (sent at the live's start, however slow the machine) are gone. */
const FILE_ROWS = [
  '<d p="26.0,5,25,16711680,1600000000,0,aa11bb22,9001">RED TOP</d>',
  '<d p="26.0,5,25,255,1600000000,0,aa11bb22,9002">BLUE TOP</d>',
  '<d p="28.0,4,25,65280,1600000000,0,cc33dd44,9003">GREEN</d>',
  '<d p="30.0,1,25,16776960,1600000000,0,cc33dd44,9004">YELLOW</d>',
  '<d p="30.5,2,25,16777215,1600000000,0,cc33dd44">弾幕 &amp; emoji 🎉</d>',
  '<d p="23,7,25,0,1600000000,0,cc33dd44,9006">[positioned, not importable]</d>',
];
const IMPORTABLE = FILE_ROWS.length - 1;
const xmlFile = (rows: string[]): string => `<?xml version="1.0" encoding="UTF-8"?>\n<i>\n<chatserver>chat.bilibili.com</chatserver>\n<chatid>77</chatid>\n${rows.join('\n')}\n</i>\n`;

async function postXml(body: string, token: string | undefined, contentType = 'application/xml'): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${stack.url}/v1/lives/${liveId}/import`, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function replayed(): Promise<Replayed[]> {
  const res = await call(stack.url, 'GET', `/v1/lives/${liveId}/messages?types=comment&limit=1000`);
  assert.equal(res.status, 200);
  assert.equal(res.body.next, null);
  return res.body.messages as Replayed[];
}

function errorOf(body: Record<string, unknown>): { code: string; message: string } {
  assert.deepEqual(Object.keys(body), ['error'], JSON.stringify(body));
  const error = body.error as { code: string; message: string };
  assert.deepEqual(Object.keys(error), ['code', 'message']);
  return error;
}

before(async () => {
  stack = await startLivesStack(testConfig({ mysqlUrl: db.url, rateUserMax: 1_000_000, rateIpMax: 1_000_000, replaySettleMs: 1, archiverLingerMs: 0 }));
  dir = mkdtempSync(join(tmpdir(), 'danmaku-ass-'));
  const started = await call(stack.url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
  assert.equal(started.status, 201);
  liveId = started.body.liveId as string;
  for (const [i, content] of LIVE_TEXTS.entries()) {
    const sent = await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: tokenFor(`fan${i}`), body: { type: 'comment', content } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
  }
  await call(stack.url, 'POST', `/v1/rooms/${room}/messages`, { token: viewer, body: { type: 'gift', giftId: 'rose', count: 2 } });
  await stack.drained();
});
after(async () => {
  await stack?.stop();
  await db.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('danmaku files: import, density, ASS', () => {
  test('a running live\'s density counts what it has; bad bucket counts are 400 in the error shape', async () => {
    const res = await call(stack.url, 'GET', `/v1/lives/${liveId}/density?buckets=10`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const counts = res.body.counts as number[];
    assert.equal(counts.length, 10);
    assert.equal(counts.reduce((a, b) => a + b, 0), LIVE_TEXTS.length, 'the comments so far, not the gift');
    const withGifts = await call(stack.url, 'GET', `/v1/lives/${liveId}/density?buckets=10&types=comment,gift`);
    assert.equal((withGifts.body.counts as number[]).reduce((a, b) => a + b, 0), LIVE_TEXTS.length + 1);

    for (const bad of ['buckets=0', 'buckets=2001', 'buckets=abc', 'buckets=1.5', 'buckets=1e309', 'types=bogus', 'other=1']) {
      const refused = await call(stack.url, 'GET', `/v1/lives/${liveId}/density?${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.equal(errorOf(refused.body).code, 'invalid_request', bad);
    }
    const unknown = await call(stack.url, 'GET', '/v1/lives/lvnone/density');
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.body).code, 'live_not_found');
  });

  test('import: only the room\'s streamer or an admin; a broken or oversized file imports nothing', async () => {
    const ended = await call(stack.url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer });
    assert.equal(ended.status, 200);
    const file = xmlFile(FILE_ROWS);

    const anonymous = await postXml(file, undefined);
    assert.equal(anonymous.status, 401);
    assert.equal(errorOf(anonymous.body).code, 'missing_token');
    const byViewer = await postXml(file, viewer);
    assert.equal(byViewer.status, 403);
    assert.equal(errorOf(byViewer.body).code, 'forbidden');
    const otherStreamer = await postXml(file, tokenFor('fs2', 'streamer', [uniqueRoom('elsewhere')]));
    assert.equal(otherStreamer.status, 403);
    const noLive = await fetch(`${stack.url}/v1/lives/lvnone/import`, { method: 'POST', headers: { authorization: `Bearer ${streamer}`, 'content-type': 'application/xml' }, body: file });
    assert.equal(noLive.status, 404);

    for (const broken of [file.slice(0, -10), '<i><d p="1,1,25,0">a</i></d>', 'just text', '<html><d p="1,1,25,0">x</d></html>']) {
      const refused = await postXml(broken, streamer);
      assert.equal(refused.status, 400, broken);
      assert.equal(errorOf(refused.body).code, 'malformed_xml');
    }
    const empty = await postXml('', streamer);
    assert.equal(empty.status, 400);
    assert.equal(errorOf(empty.body).code, 'malformed_xml');
    const asJson = await fetch(`${stack.url}/v1/lives/${liveId}/import`, { method: 'POST', headers: { authorization: `Bearer ${streamer}`, 'content-type': 'application/json' }, body: '{"d":[]}' });
    assert.equal(asJson.status, 415);
    assert.equal(errorOf((await asJson.json()) as Record<string, unknown>).code, 'unsupported_media_type');
    const asText = await postXml(file, streamer, 'text/plain');
    assert.equal(asText.status, 415);

    const tooMany = xmlFile(Array.from({ length: 50_001 }, (_, i) => `<d p="${i % 9},1,25,0">n</d>`));
    const many = await postXml(tooMany, streamer);
    assert.equal(many.status, 413);
    assert.match(errorOf(many.body).message, /50001 comments; at most 50000/);
    const huge = xmlFile([`<d p="1,1,25,0">${'x'.repeat(8 * 1024 * 1024)}</d>`]);
    const big = await postXml(huge, streamer);
    assert.equal(big.status, 413);
    const bigError = errorOf(big.body);
    assert.equal(bigError.code, 'payload_too_large');
    assert.match(bigError.message, /at most 8388608 bytes/);

    assert.equal((await replayed()).length, LIVE_TEXTS.length, 'nothing of the refused files was imported');
  });

  test('import: each row becomes a comment at its time, colour and mode; a second import adds nothing', async () => {
    const first = await postXml(xmlFile(FILE_ROWS), streamer);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, { imported: IMPORTABLE, skipped: 1, invalid: 1 });
    const again = await postXml(xmlFile(FILE_ROWS), tokenFor('root', 'admin'));
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { imported: 0, skipped: FILE_ROWS.length, invalid: 1 }, 'the same rows, the same ids');

    const messages = await replayed();
    assert.equal(messages.length, LIVE_TEXTS.length + IMPORTABLE);
    assert.deepEqual(messages.slice(0, LIVE_TEXTS.length).map((m) => m.content), LIVE_TEXTS, 'the live comments first, as sent');
    // Two at one moment replay in the order of their ids: compared by time, then text.
    const byTimeAndText = (a: unknown[], b: unknown[]): number => (a[0] as number) - (b[0] as number) || String(a[1]).localeCompare(String(b[1]));
    const imported = messages.slice(LIVE_TEXTS.length).map((m) => [m.offsetMs, m.content, m.color, m.mode, m.user.id]);
    assert.deepEqual(imported.sort(byTimeAndText), [
      [26000, 'BLUE TOP', '#0000ff', 'top', 'imported-aa11bb22'],
      [26000, 'RED TOP', '#ff0000', 'top', 'imported-aa11bb22'],
      [28000, 'GREEN', '#00ff00', 'bottom', 'imported-cc33dd44'],
      [30000, 'YELLOW', '#ffff00', undefined, 'imported-cc33dd44'],
      [30500, '弾幕 & emoji 🎉', undefined, undefined, 'imported-cc33dd44'],
    ]);

    // This system's own XML file of the live, imported into it, names rows by their message ids: nothing new.
    const exported = await (await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.xml`)).text();
    const roundTrip = await postXml(exported, streamer);
    assert.deepEqual(roundTrip.body, { imported: 0, skipped: LIVE_TEXTS.length + IMPORTABLE, invalid: 0 });

    // The players' views carry them too.
    const dplayer = await call(stack.url, 'GET', `/v1/dplayer/v3/?id=${liveId}`);
    const rows = dplayer.body.data as [number, number, number, string, string][];
    assert.deepEqual(rows.find((r) => r[4] === 'RED TOP')?.slice(0, 3), [26, 1, 0xff0000]);
    assert.equal(rows.length, LIVE_TEXTS.length + IMPORTABLE);
    const xml = await (await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.xml`)).text();
    const ds = (new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, isArray: (n) => n === 'd' }).parse(xml) as { i: { d: { p: string; '#text': string }[] } }).i.d;
    assert.equal(ds.length, LIVE_TEXTS.length + IMPORTABLE);
    assert.deepEqual(ds.find((d) => d['#text'] === 'GREEN')?.p.split(',').slice(0, 4), ['28.000', '4', '25', String(0x00ff00)]);
  });

  test('density: the counts add up to the replay, each in its span, past the live\'s own end', async () => {
    const messages = await replayed();
    for (const buckets of [1, 7, 100]) {
      const res = await call(stack.url, 'GET', `/v1/lives/${liveId}/density?buckets=${buckets}`);
      assert.equal(res.status, 200);
      const { durationMs, bucketMs, counts } = res.body as { durationMs: number; bucketMs: number; counts: number[] };
      assert.equal(res.body.liveId, liveId);
      assert.ok(durationMs > 30_500, `reaches the last imported comment (${durationMs})`);
      assert.equal(bucketMs, Math.ceil(durationMs / buckets));
      const expected = new Array<number>(buckets).fill(0);
      for (const m of messages) expected[Math.min(buckets - 1, Math.floor(m.offsetMs / bucketMs))]! += 1;
      assert.deepEqual(counts, expected);
    }
  });

  test('ASS: one Dialogue per comment, text intact, and libass draws each where and when it belongs', async () => {
    const res = await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.ass?width=640&height=360&fontSize=24&duration=4`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/x-ssa; charset=utf-8/);
    assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`attachment; filename="${liveId}.ass"`));
    const ass = await res.text();
    assert.ok(ass.startsWith('[Script Info]'), 'the BOM is read as an encoding mark');
    for (const line of ['ScriptType: v4.00+', 'PlayResX: 640', 'PlayResY: 360', '[V4+ Styles]', '[Events]']) assert.ok(ass.includes(`\n${line}\n`), line);
    const dialogues = ass.split('\n').filter((l) => l.startsWith('Dialogue: '));
    assert.equal(dialogues.length, LIVE_TEXTS.length + IMPORTABLE);
    const byText = (text: string): string => dialogues.find((l) => l.endsWith(`}${text}`)) ?? assert.fail(`no Dialogue ends with ${text}:\n${dialogues.join('\n')}`);
    // RED and BLUE share a moment (26 s), so they replay in the order of their ids, which differ
    // from run to run: the first takes the top lane, the other the next one.
    const topLane = (text: string): number => Number(/\\pos\(320,(\d+)\)/.exec(byText(text))?.[1]) / 32;
    assert.match(byText('RED TOP'), /^Dialogue: 0,0:00:26\.00,0:00:30\.00,Danmaku,,0,0,0,,\{\\an8\\pos\(320,(0|32)\)\\c&H0000FF&\}/);
    const redLane = topLane('RED TOP');
    const blueLane = topLane('BLUE TOP');
    assert.deepEqual([redLane, blueLane].sort(), [0, 1], 'the two top comments of one moment in the first two lanes');
    assert.match(byText('GREEN'), /\{\\an2\\pos\(320,\d+\)\\c&H00FF00&\}/);
    assert.match(byText('YELLOW'), /^Dialogue: 0,0:00:30\.00,0:00:34\.00,.*\{\\move\(640,0,-\d+,0\)\\c&H00FFFF&\}/);
    byText('前方高能 🔥');
    byText('弾幕 & emoji 🎉');
    byText('hello \\{world\\} \\\u200bN not a break');

    const withGifts = await (await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.ass?types=comment,gift`)).text();
    const giftLines = withGifts.split('\n').filter((l) => l.startsWith('Dialogue: '));
    assert.equal(giftLines.length, dialogues.length + 1);
    assert.ok(giftLines.some((l) => l.endsWith('}name-fv1 sent rose × 2')), 'a gift as the pages word it');

    const defaults = await (await fetch(`${stack.url}/v1/lives/${liveId}/danmaku.ass`)).text();
    assert.ok(defaults.includes('\nPlayResX: 1920\nPlayResY: 1080\n'));
    for (const bad of ['width=10', 'opacity=2', 'duration=0', 'types=nope', 'fontSize=abc']) {
      const refused = await call(stack.url, 'GET', `/v1/lives/${liveId}/danmaku.ass?${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.equal(errorOf(refused.body).code, 'invalid_request');
    }

    // Rendered over 34 s of black at 10 frames a second; frame n is the moment n/10 s.
    const file = join(dir, 'live.ass');
    writeFileSync(file, ass);
    const at = [25.5, 26.5, 28.5, 30.5, 32];
    const { stdout } = await run(
      'ffmpeg',
      ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=black:s=640x360:r=10:d=34', '-vf', `ass=${file},select='${at.map((t) => `eq(n\\,${Math.round(t * 10)})`).join('+')}'`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    );
    const frameBytes = 640 * 360 * 3;
    assert.equal(stdout.length, frameBytes * at.length);
    const frame = (t: number): Buffer => stdout.subarray(at.indexOf(t) * frameBytes, (at.indexOf(t) + 1) * frameBytes);
    type Colour = 'red' | 'blue' | 'green' | 'yellow';
    const is: Record<Colour, (r: number, g: number, b: number) => boolean> = {
      red: (r, g, b) => r > 150 && g < 90 && b < 90,
      blue: (r, g, b) => b > 150 && r < 90 && g < 90,
      green: (r, g, b) => g > 150 && r < 90 && b < 90,
      yellow: (r, g, b) => r > 150 && g > 150 && b < 90,
    };
    /** Pixels of a colour in a box, and their leftmost x. */
    const look = (t: number, colour: Colour, box = { x0: 0, y0: 0, x1: 640, y1: 360 }): { n: number; left: number } => {
      const f = frame(t);
      let n = 0;
      let left = Infinity;
      for (let y = box.y0; y < box.y1; y++) {
        for (let x = box.x0; x < box.x1; x++) {
          const i = (y * 640 + x) * 3;
          if (is[colour](f[i]!, f[i + 1]!, f[i + 2]!)) {
            n++;
            left = Math.min(left, x);
          }
        }
      }
      return { n, left };
    };
    // Lanes are 32 px (24 px text and its outline): lane 0 is y 0..32, lane 1 32..64, the last (10) 320..352.
    const lane = (i: number, x0 = 0, x1 = 640) => ({ x0, y0: i * 32, x1, y1: (i + 1) * 32 });
    const everywhere = { x0: 0, y0: 0, x1: 640, y1: 360 };

    assert.equal(look(25.5, 'red', everywhere).n, 0, 'nothing red before its time');
    assert.equal(look(25.5, 'blue', everywhere).n, 0);
    // Both top comments at 26 s: red in the top lane, blue in the next, centred; nowhere else.
    const red = look(26.5, 'red', lane(redLane, 200, 440));
    assert.ok(red.n > 100, `red top comment in its lane (${redLane}), centred (${red.n} px)`);
    assert.equal(look(26.5, 'red', everywhere).n, red.n, 'and nowhere else');
    const blue = look(26.5, 'blue', lane(blueLane, 200, 440));
    assert.ok(blue.n > 100, `blue top comment in the other lane (${blueLane}) (${blue.n} px)`);
    assert.equal(look(26.5, 'blue', everywhere).n, blue.n, 'not over the red one');
    assert.equal(look(26.5, 'green', everywhere).n, 0, 'green not yet');
    // The bottom comment at 28 s stands centred in the bottom lane; the red one still stands.
    const green = look(28.5, 'green', lane(10, 220, 420));
    assert.ok(green.n > 80, `green bottom comment in the bottom lane (${green.n} px)`);
    assert.equal(look(28.5, 'green', everywhere).n, green.n);
    assert.ok(look(28.5, 'red', lane(redLane)).n > 100, 'a top comment stands 4 s');
    // At 30.5 s the top comments are gone and the yellow one has entered the top lane from the
    // right; by 32 s it has moved left at its speed: (640 + its width) px in 4 s.
    assert.equal(look(30.5, 'red', everywhere).n, 0, 'gone after 4 s');
    const entering = look(30.5, 'yellow', lane(0));
    assert.ok(entering.n > 50, `yellow scrolling comment in the top lane (${entering.n} px)`);
    assert.equal(look(30.5, 'yellow', everywhere).n, entering.n);
    const moved = look(32, 'yellow', lane(0));
    const width = Number(/\\move\(640,0,-(\d+),0\)/.exec(byText('YELLOW'))![1]);
    const expectedLeft = (x: number) => 640 - ((640 + width) * x) / 4000;
    assert.ok(Math.abs(entering.left - expectedLeft(500)) < 8, `at 30.5 s its left edge is at ${entering.left}, expected ${expectedLeft(500)}`);
    assert.ok(Math.abs(moved.left - expectedLeft(2000)) < 8, `at 32 s its left edge is at ${moved.left}, expected ${expectedLeft(2000)}`);
  });
});
