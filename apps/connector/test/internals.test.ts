/**
 * Contract of what the connector uses of ws, engine.io and socket.io beyond their documented API
 * (src/internals): on the versions installed, every private field or method read there exists,
 * with the shape and the meaning relied on. A failure here after an upgrade means src/internals
 * must be revisited before the pinned versions in apps/connector/package.json move.
 *
 * Also the other side of @danmaku/http's shapeSocketIoErrors: each request it refuses in the
 * API's shape is one engine.io itself refuses, with the code it maps.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import { WebSocket, WebSocketServer } from 'ws';
import { shapeSocketIoErrors } from '@danmaku/http';
import { eventFrame, idleWebSocket, queuedPackets, releaseRequest, webSocketOf } from '../src/internals/engine-io.js';
import { writeFramed, wsFrame } from '../src/internals/ws.js';

async function listen(server: HttpServer | WebSocketServer): Promise<number> {
  if (server instanceof WebSocketServer) {
    await new Promise<void>((resolve) => server.once('listening', resolve));
    return (server.address() as AddressInfo).port;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Resolves with the next value `register` hands to its callback. */
function next<T>(register: (cb: (value: T) => void) => void): Promise<T> {
  return new Promise((resolve) => register(resolve));
}

describe('ws: a frame built once, written as it is', () => {
  let wss: WebSocketServer;
  let url: string;
  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    url = `ws://127.0.0.1:${await listen(wss)}`;
  });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  it('the sender has sendFrame(list, cb) and an idle state 0, and the frame arrives between send()s in order', async () => {
    const accepted = next<WebSocket>((cb) => wss.once('connection', cb));
    const client = new WebSocket(url);
    const server = await accepted;
    await next((cb) => (client.readyState === WebSocket.OPEN ? cb(undefined) : client.once('open', cb)));
    const sender = (server as unknown as { _sender: { sendFrame: unknown; _state: unknown } })._sender;
    assert.equal(typeof sender.sendFrame, 'function');
    assert.equal((sender.sendFrame as (...a: unknown[]) => unknown).length, 2, 'sendFrame(list, cb)');
    assert.equal(sender._state, 0, 'an idle sender says 0');

    const got: string[] = [];
    const three = new Promise<void>((resolve) =>
      client.on('message', (data: Buffer, isBinary: boolean) => {
        got.push(`${isBinary ? 'bin' : 'text'}:${data.toString()}`);
        if (got.length === 3) resolve();
      }),
    );
    server.send('a');
    assert.equal(writeFramed(server, wsFrame(0x1, Buffer.from('b'))), true);
    server.send(Buffer.from('c'), { binary: true });
    await three;
    assert.deepEqual(got, ['text:a', 'text:b', 'bin:c']);

    // bufferedAmount (public) is what the slow-consumer check reads: a number, 0 when all left.
    assert.equal(server.bufferedAmount, 0);
    const closed = next((cb) => server.once('close', cb));
    client.close();
    await closed;
    assert.equal(writeFramed(server, wsFrame(0x1, Buffer.from('late'))), false, 'nothing written to a closed WebSocket');
  });
});

describe('engine.io and socket.io: the connection under a socket', () => {
  let http: HttpServer;
  let ioServer: Server;
  let base: string;
  const clients: ClientSocket[] = [];
  before(async () => {
    http = createServer();
    ioServer = new Server(http, { serveClient: false, perMessageDeflate: false, httpCompression: false });
    base = `http://127.0.0.1:${await listen(http)}`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await ioServer.close();
  });

  async function websocketPair(): Promise<{ server: Socket; client: ClientSocket }> {
    const accepted = next<Socket>((cb) => ioServer.once('connection', cb));
    const client = connect(base, { transports: ['websocket'], reconnection: false });
    clients.push(client);
    const server = await accepted;
    if (!client.connected) await next((cb) => client.once('connect', () => cb(undefined)));
    return { server, client };
  }

  it('a socket on an open WebSocket shows its ws WebSocket, an empty write buffer and no upgrade; a prebuilt frame is an event', async () => {
    const { server, client } = await websocketPair();
    const conn = server.conn as unknown as { readyState: unknown; upgrading: unknown; writeBuffer: unknown; transport: { name: unknown; socket: unknown } };
    assert.equal(conn.readyState, 'open');
    assert.equal(conn.upgrading, false);
    assert.ok(Array.isArray(conn.writeBuffer));
    assert.equal(conn.transport.name, 'websocket');
    assert.ok(conn.transport.socket instanceof WebSocket, 'transport.socket is a ws WebSocket (the same ws package)');

    const ws = idleWebSocket(server);
    assert.ok(ws, 'idle on its WebSocket');
    assert.equal(webSocketOf(server), ws);
    assert.equal(queuedPackets(server), 0);
    assert.equal(typeof ws.bufferedAmount, 'number');

    // What the fan-out writes is what socket.emit would have delivered, around emits, in order.
    const payload = { roomId: 'r', messages: [{ id: 'm1', content: 'é 😀 "q"' }], cursor: 'c' };
    const got: unknown[] = [];
    const three = new Promise<void>((resolve) =>
      client.onAny((event: string, data: unknown) => {
        got.push([event, data]);
        if (got.length === 3) resolve();
      }),
    );
    server.emit('room', { n: 1 });
    assert.equal(writeFramed(ws, eventFrame('messages', payload)), true);
    server.emit('room', { n: 2 });
    await three;
    assert.deepEqual(got, [['room', { n: 1 }], ['messages', payload], ['room', { n: 2 }]]);

    // The handshake survives the request being let go, and the socket keeps working.
    releaseRequest(server);
    assert.equal((server.conn as unknown as { request: unknown }).request, null);
    assert.equal(server.handshake.address.length > 0, true);
    const echoed = next<unknown>((cb) => client.once('after', cb));
    server.emit('after', 1);
    assert.equal(await echoed, 1);
  });

  it('terminating the WebSocket under a socket disconnects it at once', async () => {
    const { server, client } = await websocketPair();
    const gone = next((cb) => server.once('disconnect', cb));
    const clientGone = next((cb) => client.once('disconnect', cb));
    server.conn.close(true);
    webSocketOf(server)?.terminate();
    await Promise.all([gone, clientGone]);
    assert.equal(idleWebSocket(server), null);
  });

  it('a long-polling socket has no WebSocket, and what it has not polled for waits in the write buffer', async () => {
    const accepted = next<Socket>((cb) => ioServer.once('connection', cb));
    const url = `${base}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(url)).text();
    const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
    const post = await fetch(`${url}&sid=${sid}`, { method: 'POST', body: '40', headers: { 'content-type': 'text/plain' } });
    assert.equal(post.status, 200);
    await post.text();
    const server = await accepted;
    assert.match(await (await fetch(`${url}&sid=${sid}`)).text(), /^40/, 'the namespace connect answer');
    // No poll pending now: an emit stays in engine.io's buffer.
    assert.equal(idleWebSocket(server), null);
    assert.equal(webSocketOf(server), undefined);
    assert.equal(queuedPackets(server), 0);
    server.emit('room', { n: 1 });
    server.emit('room', { n: 2 });
    assert.equal(queuedPackets(server), 2);
    const polled = await (await fetch(`${url}&sid=${sid}`)).text();
    assert.equal(polled, '42["room",{"n":1}]\x1e42["room",{"n":2}]');
    assert.equal(queuedPackets(server), 0);
    server.disconnect(true);
  });
});

/** Status, content type and body of a request. */
async function answer(url: string, init: RequestInit = {}): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The raw answer to a WebSocket upgrade that is refused. */
function refusedUpgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('error', () => undefined);
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

describe('engine.io refusals: what engine.io refuses, and the same in the API shape', () => {
  // One socket.io server as engine.io is, one with the API's shapes.
  const servers: { http: HttpServer; io: Server; base: string }[] = [];
  before(async () => {
    for (const shaped of [false, true]) {
      const http = createServer();
      const io = new Server(http, { serveClient: false });
      if (shaped) shapeSocketIoErrors(io.engine);
      servers.push({ http, io, base: `http://127.0.0.1:${await listen(http)}` });
    }
  });
  after(async () => {
    for (const { io } of servers) await io.close();
  });

  /** [path and query, method, engine.io's code, the API's code] */
  const cases: [string, string, number, string][] = [
    ['?EIO=4&transport=carrier-pigeon', 'GET', 0, 'transport_unknown'],
    ['?EIO=4', 'GET', 0, 'transport_unknown'],
    ['?EIO=4&transport=polling&sid=nobody', 'GET', 1, 'session_unknown'],
    ['?EIO=4&transport=polling', 'POST', 2, 'bad_handshake_method'],
    ['?EIO=4&transport=websocket', 'GET', 3, 'bad_request'],
    ['?EIO=3&transport=polling', 'GET', 5, 'unsupported_protocol_version'],
    ['?EIO=x&transport=polling', 'GET', 5, 'unsupported_protocol_version'],
  ];
  for (const [query, method, engineCode, apiCode] of cases) {
    it(`${method} ${query}: engine.io ${engineCode}, API ${apiCode}`, async () => {
      const [plain, shaped] = servers as [(typeof servers)[0], (typeof servers)[0]];
      const raw = await answer(`${plain.base}/socket.io/${query}`, { method });
      assert.equal(raw.status, 400);
      assert.equal((JSON.parse(raw.body) as { code: number }).code, engineCode, raw.body);
      const ours = await answer(`${shaped.base}/socket.io/${query}`, { method });
      assert.equal(ours.status, 400);
      assert.match(ours.type, /^application\/json/);
      const body = JSON.parse(ours.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, apiCode, ours.body);
      assert.ok(body.error.message.length > 0);
    });
  }

  it('a session asked for on another transport without an upgrade: engine.io 3, API bad_request', async () => {
    for (const [i, { base }] of servers.entries()) {
      const open = await (await fetch(`${base}/socket.io/?EIO=4&transport=polling`)).text();
      const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
      const res = await answer(`${base}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      assert.equal(res.status, 400);
      if (i === 0) assert.equal((JSON.parse(res.body) as { code: number }).code, 3, res.body);
      else assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'bad_request', res.body);
    }
  });

  it('a refused WebSocket upgrade: engine.io text/html 400, API 400 bad_request', async () => {
    const [plain, shaped] = servers as [(typeof servers)[0], (typeof servers)[0]];
    for (const query of ['?EIO=4&transport=websocket&sid=nobody', '?EIO=4&transport=carrier-pigeon']) {
      const raw = await refusedUpgrade(`${plain.base.replace('http', 'ws')}/socket.io/${query}`);
      assert.equal(raw.status, 400, query);
      assert.throws(() => JSON.parse(raw.body) as unknown, SyntaxError, `engine.io's own upgrade refusal is not JSON: ${raw.body}`);
      const ours = await refusedUpgrade(`${shaped.base.replace('http', 'ws')}/socket.io/${query}`);
      assert.equal(ours.status, 400, query);
      const body = JSON.parse(ours.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'bad_request');
      assert.match(body.error.message, /^WebSocket upgrade refused: /);
    }
    // engine.io itself finds an old protocol only after the upgrade completed (its 400 then lands
    // inside the WebSocket); the check before it refuses the upgrade properly.
    const old = await refusedUpgrade(`${shaped.base.replace('http', 'ws')}/socket.io/?EIO=3&transport=websocket`);
    assert.equal(old.status, 400);
    assert.equal((JSON.parse(old.body) as { error: { code: string } }).error.code, 'bad_request');
  });

  it('what engine.io accepts goes through untouched: handshakes on both transports, polls, posts', async () => {
    const { base } = servers[1] as (typeof servers)[0];
    const open = await answer(`${base}/socket.io/?EIO=4&transport=polling`);
    assert.equal(open.status, 200);
    assert.match(open.body, /^0\{"sid":/);
    const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
    const post = await answer(`${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40', headers: { 'content-type': 'text/plain' } });
    assert.equal(post.status, 200);
    assert.equal(post.body, 'ok');
    const client = connect(base, { transports: ['websocket'], reconnection: false });
    try {
      await next((cb) => client.once('connect', () => cb(undefined)));
      assert.equal(client.io.engine.transport.name, 'websocket');
    } finally {
      client.close();
    }
    // Upgrading the polling session to a WebSocket (the browser's usual path) is accepted too.
    const upgrade = connect(base, { transports: ['polling', 'websocket'], reconnection: false });
    try {
      await next((cb) => upgrade.io.engine.once('upgrade', () => cb(undefined)));
      assert.equal(upgrade.io.engine.transport.name, 'websocket');
    } finally {
      upgrade.close();
    }
  });
});
