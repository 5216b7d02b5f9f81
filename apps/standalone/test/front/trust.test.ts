/**
 * Security and input trust: a production start with the public secret refuses, dev tokens are
 * development-only and never admin, control characters are refused, empty JSON bodies where no
 * field is required, the HTTP parser's and the framework's errors in the error shape, and the
 * rooms-per-socket limit under joins sent without waiting for acks.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { io as ioClient, type Socket } from 'socket.io-client';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createAuth } from '@danmaku/auth';
import { createLogger } from '@danmaku/observability';
import { spawnTs, testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';

let system: Standalone;
let port: number;
before(async () => {
  system = await startStandalone(testConfig(), createLogger('test', 'silent'));
  port = Number(new URL(system.url).port);
});
after(async () => {
  await system.stop();
});

interface ErrorBody {
  error: { code: string; message: string };
}

function assertShape(status: number, text: string, context: string): ErrorBody {
  assert.ok(status >= 400 && status < 500, `${context}: status ${status}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${context}: body is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  const error = (body as ErrorBody).error;
  assert.equal(typeof error?.code, 'string', `${context}: ${text}`);
  assert.equal(typeof error?.message, 'string', `${context}: ${text}`);
  assert.ok(error.message.length > 0);
  return body as ErrorBody;
}

/** Writes raw bytes and reads the whole answer (the server closes after a parser error). */
async function raw(bytes: string | Buffer): Promise<{ status: number; body: string; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer to ${JSON.stringify(String(bytes).slice(0, 80))}`)), 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      // A complete answer: headers and Content-Length bytes of body.
      const split = text.indexOf('\r\n\r\n');
      const length = /content-length:\s*(\d+)/i.exec(text.slice(0, split));
      if (split >= 0 && length && Buffer.byteLength(text.slice(split + 4), 'latin1') >= Number(length[1])) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4), text });
    });
    socket.write(bytes);
  });
}

describe('a production start with the public development secret', () => {
  for (const [label, env] of [
    ['NODE_ENV=production', { NODE_ENV: 'production' }],
    ['HOST=0.0.0.0', { HOST: '0.0.0.0' }],
  ] as const) {
    test(`refuses with ${label}`, async () => {
      const proc = spawnTs('apps/front/src/main.ts', { ...env, PORT: '0', DANMAKU_JWT_SECRET: '', LOG_LEVEL: 'warn' });
      const code = await new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(proc.output(), /Refusing to start: DANMAKU_JWT_SECRET is the public development default/);
      assert.doesNotMatch(proc.output(), /front listening/);
    });
  }

  test('starts with a real secret in production (the check looks at the secret, not only the mode)', async () => {
    const proc = spawnTs('apps/router/src/main.ts', { NODE_ENV: 'production', ROUTER_PORT: '0', DANMAKU_JWT_SECRET: 'a-real-secret-0123456789', LOG_LEVEL: 'warn' });
    try {
      await proc.waitForOutput(/router listening on/);
    } finally {
      await proc.kill();
    }
  });
});

describe('dev tokens', () => {
  const mint = (body: unknown) =>
    fetch(`${system.url}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('never admin', async () => {
    const res = await mint({ name: 'x', role: 'admin' });
    assert.equal(res.status, 400);
    assertShape(res.status, await res.text(), 'admin dev token');
    assert.equal((await mint({ name: 'x', role: 'streamer', rooms: ['r1'] })).status, 200);
  });

  test('absent under NODE_ENV=production', async () => {
    const before = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const res = await mint({ name: 'x' });
      assert.equal(res.status, 404);
    } finally {
      if (before === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = before;
    }
  });
});

describe('control characters', () => {
  const roomId = uniqueRoom('ctl');
  const post = (path: string, body: unknown, token = tokenFor('ctl-user')) =>
    fetch(`${system.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('are refused in a comment, a clientMsgId, a notice', async () => {
    for (const content of ['a\u0000b', 'line\nbreak', 'esc\u001b[31m', 'del\u007f', 'c1\u0085', 'bidi\u202eevil', 'sep\u2028x']) {
      const res = await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content });
      const body = assertShape(res.status, await res.text(), JSON.stringify(content));
      assert.equal(res.status, 400);
      assert.equal(body.error.code, 'invalid_request');
      assert.match(body.error.message, /control characters/);
    }
    const id = await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: 'fine', clientMsgId: 'a\u0001' });
    assert.equal(id.status, 400);
    const notice = await post(`/v1/rooms/${roomId}/notice`, { content: 'pinned\u0000' }, tokenFor('owner', 'streamer', [roomId]));
    assert.equal(notice.status, 400);
    // Ordinary text still passes: CJK, emoji, punctuation.
    assert.equal((await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: '弹幕 ok 🎉 <b>&' })).status, 202);
  });

  test('are refused in a socket send', async () => {
    const socket = ioClient(system.url, { transports: ['websocket'], auth: { token: tokenFor('ctl-sock') }, reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const ack = (await socket.timeout(5000).emitWithAck('send', { roomId, type: 'comment', content: 'nul\u0000' })) as ErrorBody;
      assert.equal(ack.error.code, 'invalid_request');
    } finally {
      socket.close();
    }
  });

  test('are stripped from a display name a token carries', async () => {
    const token = createAuth(testConfig().jwtSecret).sign({ sub: 'ctl-name', name: 'Ev\u0000il\u001b[2J\u202e', role: 'viewer' });
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/enter`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const users = (await (await fetch(`${system.url}/v1/rooms/${roomId}/users`)).json()) as { users: { id: string; name: string }[] };
    assert.equal(users.users.find((u) => u.id === 'ctl-name')?.name, 'Evil[2J');
  });
});

describe('empty JSON bodies', () => {
  test('a like and an enter with Content-Type: application/json and no body are accepted', async () => {
    const roomId = uniqueRoom('empty');
    const headers = { authorization: `Bearer ${tokenFor('empty-user')}`, 'content-type': 'application/json' };
    const like = await fetch(`${system.url}/v1/rooms/${roomId}/likes`, { method: 'POST', headers, body: '' });
    assert.equal(like.status, 202, await like.text());
    const enter = await fetch(`${system.url}/v1/rooms/${roomId}/enter`, { method: 'POST', headers });
    assert.equal(enter.status, 200, await enter.text());
    const leave = await fetch(`${system.url}/v1/rooms/${roomId}/leave`, { method: 'POST', headers, body: '  ' });
    assert.equal(leave.status, 200);
    // A send needs fields, so an empty body there is still the clear 400.
    const send = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, { method: 'POST', headers, body: '' });
    assert.equal((assertShape(send.status, await send.text(), 'empty send')).error.code, 'malformed_json');
  });
});

describe("the parser's and the framework's errors are in the error shape", () => {
  const cases: [string, string, number][] = [
    ['bad method', 'FOO\u0001 / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['unknown method', 'BREW /v1/route HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['control byte in the request line', 'GET /v1/\u0001route HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['control byte in a header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400],
    ['bad chunking', 'POST /v1/client-metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400],
    ['Content-Length with Transfer-Encoding', 'POST /v1/client-metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n', 400],
    ['bad percent escape', 'GET /v1/rooms/%ff/messages HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['path id over 100 characters', `GET /v1/rooms/${'a'.repeat(150)}/messages HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['huge headers', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['no Host header', 'GET /healthz HTTP/1.1\r\n\r\n', 400],
    ['garbage', '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\r\n\r\n', 400],
  ];
  for (const [label, bytes, status] of cases) {
    test(label, async () => {
      const answer = await raw(Buffer.from(bytes, 'latin1'));
      assert.equal(answer.status, status, answer.text.slice(0, 300));
      assertShape(answer.status, answer.body, label);
    });
  }
  test('bytes after a request (a body sent without a length) never add a second answer to the connection', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let got = '';
      const timer = setTimeout(() => socket.destroy(new Error(`the connection stayed open: ${JSON.stringify(got.slice(0, 200))}`)), 10_000);
      socket.on('data', (chunk: Buffer) => (got += chunk.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
      // The server reads the body as the next request and its parser fails on it, while the
      // answer to the DELETE is being written.
      socket.write('DELETE /v1/rooms/body-no-length/bans/u1 HTTP/1.1\r\nHost: x\r\n\r\n{"junk": true}');
    });
    // One answer, whichever is first: the DELETE's, or the parser's 400 in its place.
    assert.equal(text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, text.slice(0, 400));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    assertShape(status, text.slice(text.indexOf('\r\n\r\n') + 4), 'body without a length');
  });

  test('a HEAD request with huge headers gets the head alone (no stray body after Connection: close)', async () => {
    const answer = await new Promise<{ status: number; error: string | null }>((resolve) => {
      const url = new URL(system.url);
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'HEAD', path: `/v1/route?${'x'.repeat(20_000)}`, agent: false }, (res) => {
        res.resume();
        res.on('end', () => setImmediate(() => resolve({ status: res.statusCode ?? 0, error: null })));
      });
      // Node's parser reports a body sent after a HEAD answer as data after Connection: close.
      req.on('error', (err: Error & { code?: string }) => resolve({ status: 0, error: err.code ?? err.message }));
      req.end();
    });
    assert.deepEqual(answer, { status: 431, error: null });
  });
});

describe('rooms per socket', () => {
  test('40 joins sent without waiting for acks: exactly 8 accepted', async () => {
    const socket: Socket = ioClient(system.url, { transports: ['websocket'], auth: { token: tokenFor('many-rooms') }, reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const base = uniqueRoom('many');
      const acks = await Promise.all(
        Array.from({ length: 40 }, (_, i) => socket.timeout(10_000).emitWithAck('join', { roomId: `${base}-${i}` }) as Promise<{ ok: boolean; error?: { code: string } }>),
      );
      assert.equal(acks.filter((a) => a.ok).length, 8);
      assert.ok(acks.filter((a) => !a.ok).every((a) => a.error?.code === 'too_many_rooms'));
      // A slot freed by a leave can be taken again, still at most 8.
      const joined = acks.findIndex((a) => a.ok);
      await socket.timeout(5000).emitWithAck('leave', { roomId: `${base}-${joined}` });
      const again = await Promise.all(
        [100, 101].map((i) => socket.timeout(10_000).emitWithAck('join', { roomId: `${base}-${i}` }) as Promise<{ ok: boolean }>),
      );
      assert.equal(again.filter((a) => a.ok).length, 1);
    } finally {
      socket.close();
    }
  });
});
