/**
 * The fuzz runner: thousands of bad HTTP requests over every route, raw bytes over TCP, bad
 * engine.io / socket.io packets, against a standalone server in its own process (so a crash is
 * a count, not a dead test runner). Every answer must be a 2xx/3xx or a 4xx in the error shape;
 * no 5xx, no crash.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { io as ioClient } from 'socket.io-client';
import { createAuth } from '@danmaku/auth';
import { testConfig, tokenFor, type Spawned } from '@danmaku/testkit';
import { bilibiliFuzz } from './bilibili.js';
import type { ClassCounts } from './counts.js';
import { body, chance, enc, int, nastyString, pathSegment, pick, query, rng, type Rng } from './gen.js';

export interface FuzzReport {
  seed: number;
  classes: Record<string, ClassCounts>;
  crashes: number;
  durationMs: number;
}

const empty = (): ClassCounts => ({ requests: 0, answers: 0, inShape: 0, ok2xx: 0, client4xx: 0, server5xx: 0, noAnswer: 0, outOfShape: 0, samples: [] });

interface Route {
  method: string;
  path: string;
  query?: string[];
  fields?: string[];
}

/** Every route the front, router and connector serve (API.md). */
export const ROUTES: Route[] = [
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/rooms/:p' },
  { method: 'GET', path: '/replay', query: ['live', 'room'] },
  { method: 'GET', path: '/replay/:p' },
  { method: 'GET', path: '/studio', query: ['room'] },
  { method: 'GET', path: '/studio/:p' },
  { method: 'GET', path: '/admin' },
  { method: 'GET', path: '/assets/:p' },
  { method: 'GET', path: '/js/:p' },
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
  { method: 'POST', path: '/v1/dev/token', fields: ['name', 'role', 'rooms'] },
  { method: 'GET', path: '/v1/route', query: ['uid', 'deviceId', 'version'] },
  { method: 'POST', path: '/v1/client-metrics', fields: ['sdk', 'samples', 'kind', 'mode', 'ms'] },
  { method: 'GET', path: '/v1/admin/switches' },
  { method: 'PUT', path: '/v1/admin/switches', fields: ['enterMessages', 'likes', 'forcePolling', 'pollIntervalMs', 'readOnlyRooms', 'bigRoomSampleRatio'] },
  { method: 'GET', path: '/v1/admin/route-config' },
  { method: 'PUT', path: '/v1/admin/route-config', fields: ['enabled', 'percent', 'pollIntervalMs', 'blacklist', 'whitelist', 'uids', 'deviceIds', 'versions'] },
  { method: 'POST', path: '/v1/rooms/:p/messages', fields: ['type', 'content', 'giftId', 'count', 'clientMsgId'] },
  { method: 'GET', path: '/v1/rooms/:p/messages', query: ['types', 'cursor', 'limit'] },
  { method: 'DELETE', path: '/v1/rooms/:p/messages/:p', query: ['type'] },
  { method: 'POST', path: '/v1/rooms/:p/likes', fields: ['count'] },
  { method: 'POST', path: '/v1/rooms/:p/enter' },
  { method: 'POST', path: '/v1/rooms/:p/leave' },
  { method: 'GET', path: '/v1/rooms/:p/users', query: ['limit'] },
  { method: 'GET', path: '/v1/rooms/:p' },
  { method: 'POST', path: '/v1/rooms/:p/lives' },
  { method: 'GET', path: '/v1/rooms/:p/lives', query: ['limit'] },
  { method: 'POST', path: '/v1/rooms/:p/lives/:p/end' },
  { method: 'GET', path: '/v1/lives/:p' },
  { method: 'GET', path: '/v1/lives/:p/messages', query: ['from', 'to', 'types', 'limit'] },
  { method: 'POST', path: '/v1/rooms/:p/mutes', fields: ['userId', 'durationSec'] },
  { method: 'DELETE', path: '/v1/rooms/:p/mutes/:p' },
  { method: 'POST', path: '/v1/rooms/:p/bans', fields: ['userId', 'durationSec'] },
  { method: 'DELETE', path: '/v1/rooms/:p/bans/:p' },
  { method: 'PUT', path: '/v1/rooms/:p/slow-mode', fields: ['seconds'] },
  { method: 'POST', path: '/v1/rooms/:p/notice', fields: ['content'] },
  { method: 'GET', path: '/v1/rooms/:p/notice' },
  { method: 'DELETE', path: '/v1/rooms/:p/notice' },
  { method: 'GET', path: '/v1/rooms/:p/stats' },
];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
const CONTENT_TYPES = ['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=zz', 'application/JSON', 'application/json; charset=latin1', 'application/octet-stream', ''];

function tokens(): string[] {
  const config = testConfig();
  const foreign = createAuth('not-this-servers-secret').sign({ sub: 'fz', name: 'fz', role: 'admin' });
  const expired = createAuth(config.jwtSecret).sign({ sub: 'fz-old', name: 'old', role: 'viewer' }, -60);
  const header = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
  const payload = Buffer.from('{"sub":"fz","role":"admin","name":"x"}').toString('base64url');
  return [
    '',
    `Bearer ${tokenFor('fz-viewer')}`,
    `Bearer ${tokenFor('fz-streamer', 'streamer', ['fz-1', 'fz-2'])}`,
    `Bearer ${tokenFor('fz-admin', 'admin')}`,
    `Bearer ${foreign}`,
    `Bearer ${expired}`,
    `Bearer ${header}.${payload}.`,
    'Bearer',
    'Bearer a.b.c',
    'Basic Zm9vOmJhcg==',
    `Bearer ${'x'.repeat(3000)}`,
  ];
}

/** Is `text` `{ "error": { "code": string, "message": non-empty string } }`? */
export function inErrorShape(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string' && parsed.error.message.length > 0;
  } catch {
    return false;
  }
}

function record(counts: ClassCounts, status: number, text: string, what: string, headOnly = false): void {
  counts.answers++;
  if (status >= 500) {
    counts.server5xx++;
    if (counts.samples.length < 5) counts.samples.push(`${status} ${what}: ${text.slice(0, 160)}`);
  } else if (status >= 400) {
    counts.client4xx++;
    if (headOnly || inErrorShape(text)) counts.inShape++;
    else {
      counts.outOfShape++;
      if (counts.samples.length < 5) counts.samples.push(`${status} ${what}: ${JSON.stringify(text.slice(0, 160))}`);
    }
  } else {
    counts.ok2xx++;
    counts.inShape++;
  }
}

function fill(r: Rng, path: string): string {
  return path.replace(/:p/g, () => pathSegment(r));
}

async function httpFuzz(base: URL, r: Rng, n: number, counts: ClassCounts): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const auths = tokens();
  const one = (): Promise<void> => {
    const route = pick(r, ROUTES);
    const method = chance(r, 0.8) ? route.method : pick(r, METHODS);
    const path = fill(r, route.path) + query(r, route.query ?? []);
    const headers: Record<string, string> = {};
    const auth = pick(r, auths);
    if (auth) headers.authorization = auth;
    let payload: string | null = null;
    if (method !== 'GET' && method !== 'HEAD' && chance(r, 0.85)) {
      payload = body(r, route.fields ?? []);
      const type = pick(r, CONTENT_TYPES);
      if (type) headers['content-type'] = type;
    }
    if (chance(r, 0.05)) headers['x-forwarded-for'] = nastyString(r, 20).replace(/[^\x20-\x7e]/g, '');
    if (chance(r, 0.05)) headers.origin = 'https://evil.example';
    counts.requests++;
    const attempt = (retry: boolean): Promise<void> => new Promise<void>((resolve) => {
      let req;
      try {
        // The retry goes on a fresh connection: a kept-alive socket the server closed just as it
        // was reused is a client-side race, not an unanswered request.
        req = httpRequest({ host: base.hostname, port: base.port, method, path, headers, agent: retry ? false : agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            record(counts, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), `${method} ${path.slice(0, 80)}`, method === 'HEAD');
            resolve();
          });
          res.on('error', () => {
            counts.noAnswer++;
            resolve();
          });
        });
      } catch {
        // Node's client refuses to send it (e.g. an invalid path): not a server answer.
        counts.requests--;
        resolve();
        return;
      }
      req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
      req.on('error', (err: Error & { code?: string }) => {
        if (!retry && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          resolve(attempt(true));
          return;
        }
        counts.noAnswer++;
        if (counts.samples.length < 5) counts.samples.push(`no answer (${err.code ?? err.message}) ${method} ${path.slice(0, 80)}`);
        resolve();
      });
      req.end(payload ?? undefined);
    });
    return attempt(false);
  };
  // Eight at a time, in a deterministic order of generation.
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < n) {
      issued++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
}

/** Raw requests over TCP: broken request lines, headers, framing, and plain garbage. */
function rawCase(r: Rng): string | Buffer {
  const route = pick(r, ROUTES);
  const target = fill(r, route.path);
  const line = `${route.method} ${target} HTTP/1.1\r\n`;
  const host = 'Host: fuzz\r\n';
  const kind = int(r, 0, 17);
  switch (kind) {
    case 0:
      return Buffer.from(Array.from({ length: int(r, 1, 600) }, () => int(r, 0, 255)));
    case 1:
      return `${pick(r, ['FOO', 'G ET', 'GET\u0000', 'get', 'BREW', 'CONNECT', 'TRACE', 'PRI', 'M-SEARCH', 'ÄÖ'])} ${target} HTTP/1.1\r\n${host}\r\n`;
    case 2: {
      const text = `${line}${host}\r\n`;
      const at = int(r, 0, line.length - 2);
      return text.slice(0, at) + pick(r, ['\u0000', '\u0001', '\u007f', '\r', '\n', '\u001b', ' ']) + text.slice(at);
    }
    case 3:
      return `${line}${host}X-Bad: a${pick(r, ['\u0000', '\u0001', '\u007f', '\u000b'])}b\r\n\r\n`;
    case 4:
      return `${line}${host}${pick(r, ['Bad Header: x', 'NoColon', ': empty', 'X-A : b', ' folded: x', 'X\u0000: y'])}\r\n\r\n`;
    case 5:
      return `POST ${target} HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${pick(r, ['zz', '-1', 'ffffffffffffffffff', '5;\u0000', '0x5', ' 5'])}\r\n{}\r\n0\r\n\r\n`;
    case 6:
      return `POST ${target} HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`;
    case 7:
      return `POST ${target} HTTP/1.1\r\n${host}Content-Length: 2\r\nContent-Length: ${pick(r, ['3', '-1', 'abc', '99999999999999999999'])}\r\n\r\n{}`;
    case 8:
      return `POST ${target} HTTP/1.1\r\n${host}Transfer-Encoding: ${pick(r, ['gzip', 'chunked, chunked', 'identity', 'xchunked', 'chunked\u000b'])}\r\n\r\n{}`;
    case 9:
      return `GET ${target} HTTP/${pick(r, ['9.9', '1.1x', '1', '2.0', '0.9', '1.10'])}\r\n${host}\r\n`;
    case 10:
      return `GET /healthz HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(int(r, 17_000, 40_000))}\r\n\r\n`;
    case 11:
      return `GET ${target} HTTP/1.1\r\n\r\n`;
    case 12:
      return `GET ${pick(r, ['*', 'http://fuzz/healthz', '//x', 'healthz', '/%', '/\u00ff', '/a b'])} HTTP/1.1\r\n${host}\r\n`;
    case 13:
      return `GET /healthz HTTP/1.1\n${host.replace('\r', '')}\n`;
    case 14:
      return `GET /healthz HTTP/1.1\r\n${host}\r\n${pick(r, ['GARBAGE\r\n\r\n', 'GET /x HTTP/1.1\r\n\r\n', '\u0000\u0000'])}`;
    case 15: {
      // A request cut short: the server sees the end of the stream mid-request.
      const text = `POST ${target} HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"type":`;
      return text.slice(0, int(r, 5, text.length));
    }
    case 16:
      return `${line}${host}${Array.from({ length: int(r, 100, 3000) }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`;
    default:
      return `${line}${host}Content-Type: application/json\r\nContent-Length: ${int(r, 0, 10)}\r\n\r\n${body(r, route.fields ?? []).slice(0, 10)}`;
  }
}

/** Splits what came back into answers (pipelined requests can give several). */
function parseAnswers(text: string): { status: number; body: string }[] {
  const answers: { status: number; body: string }[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.')) {
    const split = rest.indexOf('\r\n\r\n');
    if (split < 0) break;
    const head = rest.slice(0, split);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let bodyText: string;
    if (length) {
      bodyText = Buffer.from(rest.slice(split + 4), 'latin1').subarray(0, Number(length[1])).toString('utf8');
      rest = Buffer.from(rest.slice(split + 4), 'latin1').subarray(Number(length[1])).toString('latin1');
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      // Decode chunks.
      let chunked = rest.slice(split + 4);
      bodyText = '';
      for (;;) {
        const eol = chunked.indexOf('\r\n');
        if (eol < 0) break;
        const size = parseInt(chunked.slice(0, eol), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          chunked = chunked.slice(eol + 4);
          break;
        }
        bodyText += chunked.slice(eol + 2, eol + 2 + size);
        chunked = chunked.slice(eol + 2 + size + 2);
      }
      bodyText = Buffer.from(bodyText, 'latin1').toString('utf8');
      rest = chunked;
    } else {
      bodyText = Buffer.from(rest.slice(split + 4), 'latin1').toString('utf8');
      rest = '';
    }
    answers.push({ status, body: bodyText });
  }
  return answers;
}

async function rawFuzz(base: URL, r: Rng, n: number, counts: ClassCounts): Promise<void> {
  const one = (bytes: string | Buffer): Promise<void> =>
    new Promise((resolve) => {
      counts.requests++;
      const socket = connect(Number(base.port), base.hostname);
      let text = '';
      const timer = setTimeout(() => socket.destroy(), 5000);
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        const answers = parseAnswers(text);
        if (answers.length === 0) counts.noAnswer++;
        for (const answer of answers) record(counts, answer.status, answer.body, JSON.stringify(String(bytes).slice(0, 60)));
        resolve();
      });
      socket.on('connect', () => {
        socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
        // End our side: a request left incomplete is the server's to refuse, not to wait for.
        socket.end();
      });
    });
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < n) {
      issued++;
      await one(rawCase(r));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** engine.io's HTTP side: bad transports, sessions, versions, bodies. */
async function engineHttpFuzz(base: URL, r: Rng, n: number, counts: ClassCounts): Promise<void> {
  for (let i = 0; i < n; i++) {
    const eio = pick(r, ['4', '3', '5', '', 'x', '4&EIO=4']);
    const transport = pick(r, ['polling', 'websocket', 'foo', '', 'flashsocket']);
    const sid = chance(r, 0.5) ? `&sid=${enc(nastyString(r, 24))}` : '';
    const url = `${base.origin}/socket.io/?EIO=${eio}&transport=${transport}${sid}${chance(r, 0.2) ? '&j=1' : ''}`;
    const method = pick(r, ['GET', 'POST', 'PUT', 'OPTIONS', 'DELETE']);
    counts.requests++;
    try {
      const res = await fetch(url, {
        method,
        headers: { 'content-type': pick(r, ['text/plain;charset=UTF-8', 'application/octet-stream', 'application/json']) },
        ...(method === 'POST' || method === 'PUT' ? { body: chance(r, 0.5) ? nastyString(r) : `${int(r, 0, 9)}${nastyString(r, 30)}` } : {}),
        signal: AbortSignal.timeout(10_000),
      });
      record(counts, res.status, await res.text(), `${method} ${url.slice(base.origin.length, base.origin.length + 80)}`);
    } catch {
      counts.noAnswer++;
    }
  }
}

/** Raw engine.io / socket.io packets over a WebSocket: the server drops the socket or ignores them. */
async function wsFuzz(base: URL, r: Rng, n: number, counts: ClassCounts): Promise<void> {
  const token = tokenFor('fz-ws');
  const packets = (): (string | Buffer)[] => {
    const list: (string | Buffer)[] = [];
    const count = int(r, 1, 6);
    for (let i = 0; i < count; i++) {
      list.push(
        pick(r, [
          () => `40${chance(r, 0.5) ? JSON.stringify({ token }) : nastyString(r, 40)}`,
          () => `40/${pathSegment(r)},`,
          () => `42${JSON.stringify([pick(r, ['join', 'send', 'leave', 'foo', 'disconnect', 'connect', '']), nastyString(r, 40)])}`,
          () => `42${int(r, 0, 99)}${JSON.stringify(['join', { roomId: pick(r, ['fz-1', nastyString(r, 10)]), cursor: nastyString(r, 30) }])}`,
          () => `42${int(r, 0, 99)}${JSON.stringify(['send', { roomId: 'fz-1', type: 'comment', content: nastyString(r) }])}`,
          () => `451-["send",{"_placeholder":true,"num":${int(r, 0, 99)}}]`,
          () => `4${int(r, 0, 9)}${nastyString(r, 60)}`,
          () => `${int(r, 0, 9)}${nastyString(r, 60)}`,
          () => '42["join"',
          () => `42${'['.repeat(int(r, 10, 2000))}`,
          () => `42["send","${'x'.repeat(int(r, 17_000, 40_000))}"]`,
          () => Buffer.from(Array.from({ length: int(r, 1, 200) }, () => int(r, 0, 255))),
          () => '2',
          () => '5',
          () => '6',
          () => '1',
        ])(),
      );
    }
    return list;
  };
  for (let i = 0; i < n; i++) {
    counts.requests++;
    const url = `ws://${base.host}/socket.io/?EIO=4&transport=websocket`;
    const toSend = packets();
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(url);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        ws.terminate();
        done();
      }, 3000);
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          record(counts, res.statusCode ?? 0, text, url);
          ws.terminate();
          done();
        });
      });
      ws.on('message', (data) => {
        const text = data.toString();
        if (text.startsWith('0{')) {
          counts.answers++;
          counts.inShape++;
          counts.ok2xx++;
          for (const packet of toSend) ws.send(packet);
          // Give the server a moment to react, then leave.
          setTimeout(() => {
            ws.close();
          }, 30);
        }
      });
      ws.on('close', done);
    });
  }
}

/** socket.io clients emitting bad events: each must get an error ack or be dropped, never crash the server. */
async function socketIoFuzz(base: URL, r: Rng, n: number, counts: ClassCounts): Promise<void> {
  const auths = [tokenFor('fz-sio'), tokenFor('fz-sio-s', 'streamer', ['fz-1']), ''];
  for (let i = 0; i < n; i++) {
    const auth = pick(r, auths);
    const socket = ioClient(base.origin, { transports: [pick(r, ['websocket', 'polling'])], auth: auth ? { token: auth } : {}, reconnection: false, timeout: 5000 });
    counts.requests++;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.close();
        resolve();
      }, 6000);
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.close();
        resolve();
      };
      socket.on('connect_error', (err: Error & { data?: unknown }) => {
        counts.answers++;
        counts.client4xx++;
        const data = err.data as { code?: unknown; message?: unknown } | undefined;
        if (typeof data?.code === 'string' && typeof data.message === 'string') counts.inShape++;
        else {
          counts.outOfShape++;
          if (counts.samples.length < 5) counts.samples.push(`connect_error ${err.message}`);
        }
        finish();
      });
      socket.on('connect', () => {
        // A socket the server drops for bad input has had its answer.
        socket.on('disconnect', () => {
          if (finished) return;
          counts.answers++;
          counts.inShape++;
          counts.client4xx++;
          finish();
        });
        const event = pick(r, ['join', 'send', 'leave', 'join', 'send', 'nope', 'messages', 'room']);
        const payload = chance(r, 0.3)
          ? pick(r, [null, 42, 'x', [], true])
          : { roomId: pick(r, ['fz-1', 'fz-2', nastyString(r, 10)]), type: pick(r, ['comment', 'gift', 'like', 7]), content: nastyString(r), cursor: chance(r, 0.3) ? nastyString(r, 40) : undefined };
        if (chance(r, 0.7)) {
          socket.timeout(4000).emit(event, payload, (err: Error | null, ack: unknown) => {
            if (err || finished) return;
            counts.answers++;
            const answer = ack as { ok?: boolean; error?: { code?: unknown; message?: unknown } };
            if (answer.ok === true) {
              counts.ok2xx++;
              counts.inShape++;
            } else if (typeof answer.error?.code === 'string' && typeof answer.error.message === 'string') {
              counts.client4xx++;
              counts.inShape++;
            } else {
              counts.outOfShape++;
              if (counts.samples.length < 5) counts.samples.push(`ack ${JSON.stringify(ack).slice(0, 120)}`);
            }
            finish();
          });
        } else {
          socket.emit(event, payload);
          setTimeout(finish, 200);
        }
      });
    });
  }
}

export interface FuzzOptions {
  seed: number;
  /** Scales every class; 1 = the default counts. */
  scale?: number;
  /** Only these classes (by name); all when absent. */
  only?: string[];
  /** The server to fuzz; restarted (and counted as a crash) if it dies. */
  start: () => Promise<{ url: string; proc: Spawned; biliTcpPort?: number }>;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const scale = options.scale ?? 1;
  const r = rng(options.seed);
  const classes: Record<string, ClassCounts> = {};
  let crashes = 0;
  let server = await options.start();
  const plan: [string, number, (base: URL, r: Rng, n: number, counts: ClassCounts) => Promise<void>][] = [
    ['http routes', 4000, httpFuzz],
    ['raw tcp', 1000, rawFuzz],
    ['engine.io http', 300, engineHttpFuzz],
    ['engine.io/socket.io ws packets', 250, wsFuzz],
    ['socket.io events', 200, socketIoFuzz],
    ['bilibili-protocol packets', 400, (base, rr, n, counts) => bilibiliFuzz(base, rr, n, counts, server.biliTcpPort)],
  ];
  try {
    for (const [name, n, run] of plan) {
      if (options.only && !options.only.includes(name)) continue;
      const counts = (classes[name] = empty());
      await run(new URL(server.url), r, Math.max(1, Math.round(n * scale)), counts);
      const alive = server.proc.child.exitCode === null && (await fetch(`${server.url}/healthz`).then((res) => res.ok).catch(() => false));
      if (!alive) {
        crashes++;
        counts.samples.push(`server died during ${name}: ${server.proc.output().slice(-500)}`);
        await server.proc.kill('SIGKILL');
        server = await options.start();
      }
    }
  } finally {
    await server.proc.kill();
  }
  return { seed: options.seed, classes, crashes, durationMs: Date.now() - started };
}

export function formatReport(report: FuzzReport): string {
  const rows = Object.entries(report.classes).map(
    ([name, c]) => `| ${name} | ${c.requests} | ${c.answers} | ${c.inShape} | ${c.ok2xx} | ${c.client4xx} | ${c.server5xx} | ${c.outOfShape} | ${c.noAnswer} |`,
  );
  const total = Object.values(report.classes).reduce((sum, c) => sum + c.requests, 0);
  return [
    `fuzz seed ${report.seed}: ${total} inputs in ${(report.durationMs / 1000).toFixed(1)} s, crashes ${report.crashes}`,
    '| class | inputs | answers | in shape | 2xx/ok | 4xx | 5xx | out of shape | closed without answer |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
