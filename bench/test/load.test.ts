/**
 * `npm run load` against a real standalone server (its own process, Redis and MariaDB of the test
 * run): every transport gets every acknowledged message once, the report's acked is what the
 * server stored, the report is written, thresholds and bad arguments set the exit status.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { encodeCursor } from '@danmaku/protocol';
import { nodeArgs } from '@danmaku/role/entry';
import { LOAD_ENV, REPO_ROOT, freePort, readRoom, sleep, spawnTs, tokenFor, testConfig, uniqueRoom, type Spawned } from '@danmaku/testkit';
import { UsageError, parseLoadArgs } from '../lib/load/args.js';
import { planViewers, viewersPerRoom } from '../lib/load/plan.js';
import type { LoadReport } from '../lib/load/report.js';

const SECRET = `load-test-${Date.now()}`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runLoad(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs(REPO_ROOT, 'bench/load.ts'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const readReport = (dir: string): LoadReport => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as LoadReport;

describe('npm run load', () => {
  let server: Spawned;
  let target: string;

  before(async () => {
    const port = await freePort();
    server = spawnTs('apps/standalone/src/main.ts', {
      ...LOAD_ENV,
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      DANMAKU_BILI_TCP_PORT: String(await freePort()),
      DANMAKU_JWT_SECRET: SECRET,
      DANMAKU_CLUSTER: uniqueRoom('load-cluster'),
    });
    await server.waitForOutput(/Danmaku is running/);
    target = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await server?.kill();
  });

  it('drives all four transports: delivered == expected, nothing lost or duplicated, acked == stored, a report with plots', async () => {
    const out = mkdtempSync(join(tmpdir(), 'load-'));
    const prefix = `${uniqueRoom('ld')}-`;
    const run = await runLoad([
      '--target', target, '--rooms', '3', '--room-prefix', prefix, '--viewers', '60', '--transports', 'poll,socketio,bilibili-ws,bilibili-tcp',
      '--senders', '2', '--rate', '20', '--seconds', '6', '--jwt-secret', SECRET, '--workers', '2', '--out', out, '--max-lost', '0',
    ]);
    assert.equal(run.code, 0, `exit status 0\n${run.stdout}\n${run.stderr}`);
    // The live progress line went to stderr while it ran.
    assert.match(run.stderr, /sending: poll \d+\/15 p99/);

    const report = readReport(out);
    assert.equal(report.target, target);
    assert.equal(report.seconds, 6);
    assert.equal(report.sent, 120);
    assert.equal(report.acked, 120, `every send acknowledged: ${JSON.stringify(report.sendErrors)}`);
    assert.deepEqual(Object.keys(report.transports).sort(), ['bilibili-tcp', 'bilibili-ws', 'poll', 'socketio']);
    for (const [name, t] of Object.entries(report.transports)) {
      assert.equal(t.viewers, 15, name);
      assert.equal(t.connected, 15, `${name} connected`);
      // Every viewer was ready before the first send, so each is owed its room's every message.
      assert.equal(t.expected, 15 * 40, `${name} expected`);
      assert.equal(t.delivered, t.expected, `${name} delivered`);
      assert.equal(t.lost, 0, `${name} lost`);
      assert.equal(t.duplicated, 0, `${name} duplicated`);
      for (const field of ['p50Ms', 'p90Ms', 'p99Ms'] as const) assert.equal(typeof t[field], 'number', `${name} ${field}`);
      assert.ok((t.p50Ms as number) <= (t.p90Ms as number) && (t.p90Ms as number) <= (t.p99Ms as number), `${name} percentiles in order`);
    }
    // Rooms P0..P2, each with its share of the sends, and a Bilibili number (an alias the tool set with an admin token).
    assert.deepEqual(report.rooms.map((r) => r.roomId), [0, 1, 2].map((i) => `${prefix}${i}`));
    for (const room of report.rooms) {
      assert.equal(room.acked, 40, room.roomId);
      assert.equal(typeof room.roomid, 'number');
      const info = (await (await fetch(`${target}/v1/rooms/${room.roomId}`)).json()) as { alias: number | null };
      assert.equal(info.alias, room.roomid);
      // What the server stored in that room: exactly the messages the report says it acknowledged.
      const stored = await readRoom(target, room.roomId, { until: (read) => read.length >= room.acked, timeoutMs: 15_000 });
      assert.equal(stored.length, room.acked, `${room.roomId} stored`);
      assert.ok(stored.every((m) => m.content?.startsWith(`L ${report.runId} `)), 'only the tool wrote there');
    }
    assert.equal(report.rooms.reduce((a, r) => a + r.acked, 0), report.acked);
    // The tool's own read-back says the same.
    assert.equal(report.stored, report.acked);
    assert.ok(report.rooms.every((r) => r.stored === r.acked && r.ackedStored === r.acked));
    assert.ok(report.timeline.length >= 6, 'one timeline point a second');
    assert.ok(report.thresholds.passed);

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<svg /g) ?? []).length, 4 + 3, 'latency per transport, deliveries/s, connections, errors');
    assert.match(html, /Delivery latency, bilibili-tcp/);
    assert.doesNotMatch(html, /<script|<link|src="http/, 'no external assets');
  });

  it('exits 1 when a threshold is missed; numeric rooms and a token file need no aliases', async () => {
    const out = mkdtempSync(join(tmpdir(), 'load-'));
    const tokenFile = join(out, 'tokens.txt');
    const config = testConfig({ jwtSecret: SECRET });
    writeFileSync(tokenFile, `# senders\n${tokenFor(uniqueRoom('u'), 'viewer', undefined, config)}\n${tokenFor(uniqueRoom('u'), 'viewer', undefined, config)}\n`);
    const prefix = String(randomInt(1_000_000, 9_999_999));
    const run = await runLoad([
      '--target', target, '--rooms', '2', '--room-prefix', prefix, '--viewers', '8', '--transports', 'socketio,bilibili-tcp',
      '--senders', '2', '--rate', '10', '--seconds', '2', '--token-file', tokenFile, '--workers', '1', '--out', out, '--max-p99-ms', '0,bilibili-tcp=600000',
    ]);
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /thresholds missed: socketio p99 \d+ ms > 0 ms/);
    const report = readReport(out);
    assert.equal(report.thresholds.passed, false);
    // The transport with a limit of its own is judged by it, not by the one for every transport.
    assert.deepEqual(report.thresholds.failures.map((f) => f.split(' ')[0]), ['socketio']);
    assert.deepEqual(report.thresholds.maxP99MsByTransport, { 'bilibili-tcp': 600000 });
    assert.deepEqual(report.rooms.map((r) => r.roomid), [Number(`${prefix}0`), Number(`${prefix}1`)]);
    assert.equal(report.transports['bilibili-tcp']?.delivered, report.transports['bilibili-tcp']?.expected);
    assert.ok((report.transports['bilibili-tcp']?.delivered ?? 0) > 0);
  });

  it('counts what a viewer never got as lost: comments a moderator deleted before the pollers came by', async () => {
    const out = mkdtempSync(join(tmpdir(), 'load-'));
    const room = `${uniqueRoom('ldel')}-0`;
    const admin = tokenFor(uniqueRoom('admin'), 'admin', undefined, testConfig({ jwtSecret: SECRET }));
    const running = runLoad([
      '--target', target, '--rooms', '1', '--room-prefix', room.slice(0, -1), '--viewers', '6', '--transports', 'poll,socketio',
      '--senders', '2', '--rate', '4', '--seconds', '4', '--jwt-secret', SECRET, '--workers', '1', '--out', out, '--max-lost', '0', '--drain-seconds', '5',
    ]);
    // Watch the room closely and delete the first three comments as soon as they are stored: the
    // socket.io viewers usually have them already, the pollers (every 2 s) mostly never see them.
    const deleted: string[] = [];
    let cursor = encodeCursor({ comment: 0 });
    while (deleted.length < 3) {
      const page = (await (await fetch(`${target}/v1/rooms/${room}/messages?types=comment&cursor=${cursor}`)).json()) as { messages: { id: string }[]; cursor: string };
      cursor = page.cursor;
      for (const m of page.messages.slice(0, 3 - deleted.length)) {
        const res = await fetch(`${target}/v1/rooms/${room}/messages/${m.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
        assert.equal(res.status, 200);
        deleted.push(m.id);
      }
      await sleep(20);
    }
    const run = await running;
    assert.equal(run.code, 1, `--max-lost 0 missed\n${run.stdout}\n${run.stderr}`);
    const report = readReport(out);
    const poll = report.transports.poll as NonNullable<LoadReport['transports']['poll']>;
    const sio = report.transports.socketio as NonNullable<LoadReport['transports']['socketio']>;
    assert.equal(report.acked, 16);
    assert.equal(poll.expected, 3 * 16);
    assert.equal(sio.expected, 3 * 16);
    // Pollers (every 2 s) mostly never see them; socket.io viewers miss one too when the deletion
    // beat the connector's pull. Either way each of the 6 viewers misses at most the 3.
    const lost = poll.lost + sio.lost;
    assert.ok(lost >= 1 && lost <= 6 * 3, `the viewers missed some of the 3 deleted comments: lost ${lost}`);
    assert.equal(poll.delivered, poll.expected - poll.lost);
    assert.equal(report.rooms[0]?.lost, lost);
    assert.match(run.stdout, new RegExp(`lost ${lost} > 0`));
    // Read back, the room lacks exactly the deleted ones: acknowledged, then gone.
    assert.match(run.stdout, /3 acknowledged message\(s\) not stored/);
    assert.equal(report.stored, 13);
    assert.equal(report.rooms[0]?.ackedStored, 13);
  });

  it('refuses bad arguments with a sentence and status 2; --help prints the options; an unreachable target is status 3', async () => {
    const cases: [string[], RegExp][] = [
      [['--rooms', '3'], /--target is required/],
      [['--target', 'ftp://x'], /--target must be an http\(s\) URL/],
      [['--target', target, '--rooms', '0'], /--rooms must be a whole number from 1/],
      [['--target', target, '--transports', 'poll,carrier-pigeon'], /unknown transport "carrier-pigeon"/],
      [['--target', target, '--room-prefix', 'bad room'], /--room-prefix "bad room"/],
      [['--target', target, '--jwt-secret', 'a', '--token-file', 'b'], /exclude each other/],
      [['--target', target, '--rate', 'fast'], /--rate must be a number/],
      [['--target', target, '--huge-room-share', '1.5'], /--huge-room-share must be a number from 0 to 1/],
      [['--target', target, '--frobnicate'], /Unknown option '--frobnicate'/],
      [['--target', target, '--max-p99-ms', '300,pigeon=5'], /--max-p99-ms: unknown transport "pigeon"/],
      [['--target', target, '--max-p99-ms', 'poll=fast'], /--max-p99-ms must be a number >= 0 \(got "fast"\)/],
    ];
    for (const [args, message] of cases) assert.throws(() => parseLoadArgs(args), (err: Error) => err instanceof UsageError && message.test(err.message), args.join(' '));
    const defaults = parseLoadArgs(['--target', `${target}/`, '--rate', '9']);
    assert.ok(defaults !== 'help');
    assert.equal(defaults.target, target, 'a trailing slash is dropped');
    assert.equal(defaults.senders, 5, 'rate/2 senders keep each under the default per-user limit');
    assert.deepEqual(defaults.transports, ['poll', 'socketio', 'bilibili-ws', 'bilibili-tcp']);
    const limits = parseLoadArgs(['--target', target, '--max-p99-ms', '300,poll=6000']);
    assert.ok(limits !== 'help');
    assert.equal(limits.maxP99Ms, 300);
    assert.deepEqual(limits.maxP99MsByTransport, { poll: 6000 });

    // The process: status 2 and the sentence on stderr, the help on stdout.
    const bad = await runLoad(['--target', target, '--viewers', '2.5']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--viewers must be a whole number >= 0 \(got "2.5"\)/);
    const help = await runLoad(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--huge-room-share/);
    const down = await runLoad(['--target', `http://127.0.0.1:${await freePort()}`, '--seconds', '1']);
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot reach/);
  });

  it('plans a Zipf spread with one huge room, transports mixed in every room, loopback sources spread', () => {
    const counts = viewersPerRoom(1000, 5, 0.6);
    assert.equal(counts.reduce((a, b) => a + b, 0), 1000);
    assert.equal(counts[0], 600);
    // The rest 1/i: 400 * (1, 1/2, 1/3, 1/4) / (25/12).
    assert.deepEqual(counts.slice(1), [192, 96, 64, 48]);
    assert.deepEqual(viewersPerRoom(10, 3, null), [4, 3, 3]);

    const roomIds = ['a0', 'a1', 'a2'];
    const plan = planViewers({
      target, roomIds, viewers: 12, hugeRoomShare: null, transports: ['socketio', 'bilibili-tcp'],
      endpoints: { poll: [target], socketio: ['http://127.0.0.1:1', 'http://10.0.0.9:1'], 'bilibili-ws': [], 'bilibili-tcp': ['127.0.0.1:2243'] },
      roomids: new Map([['a0', 10], ['a1', 11], ['a2', 12]]), viewerToken: (i) => `t${i}`, rampMs: 6000, sourceAddresses: 4,
    });
    assert.equal(plan.length, 12);
    for (const room of [0, 1, 2]) {
      const inRoom = plan.filter((v) => v.room === room);
      assert.deepEqual([...new Set(inRoom.map((v) => v.transport))].sort(), ['bilibili-tcp', 'socketio'], `room ${room} has both transports`);
    }
    assert.ok(plan.filter((v) => v.transport === 'bilibili-tcp').every((v) => v.roomid === 10 + v.room));
    assert.ok(plan.every((v) => v.token === `t${v.index}`), 'socket.io and Bilibili viewers are users');
    // Loopback endpoints get 127.0.0.1..4 as sources; the remote connector gets none.
    assert.deepEqual([...new Set(plan.filter((v) => v.endpoint !== 'http://10.0.0.9:1').map((v) => v.localAddress))].sort(), ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']);
    assert.ok(plan.filter((v) => v.endpoint === 'http://10.0.0.9:1').every((v) => v.localAddress === undefined));
    // The ramp: rooms fill together, delays rise evenly to the ramp's length.
    assert.deepEqual(plan.slice(0, 3).map((v) => v.room), [0, 1, 2]);
    assert.equal(plan[0]?.delayMs, 0);
    assert.equal(plan[11]?.delayMs, 5500);
  });
});
