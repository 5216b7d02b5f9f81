/**
 * What the load tool learns from a deployment before it starts: where the connectors are (the
 * route), tokens for senders (and viewers), and a number for every room the Bilibili clients read.
 */
import { readFileSync } from 'node:fs';
import { createAuth } from '@danmaku/auth';
import { MAX_ALIAS } from '@danmaku/bilibili';
import { hash32 } from '@danmaku/model';
import type { LoadOptions } from './args.js';
import { inBatches } from './batches.js';

export class SetupError extends Error {}

export interface Endpoints {
  socketio: string[];
  biliWs: string[];
  biliTcp: string[];
  /** What the route said, for the report. */
  route: { mode: string; reason?: string };
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new SetupError(`cannot reach ${url}: ${(err as Error).cause ? String((err as Error & { cause: unknown }).cause) : (err as Error).message}`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the error message.
  }
  return { status: res.status, body };
}

const errorCode = (body: unknown): string => (body as { error?: { code?: string } })?.error?.code ?? JSON.stringify(body).slice(0, 200);

/** The connectors, from `GET /v1/route`; socket.io URLs from its Bilibili list when the route says "poll". */
export async function discover(options: Pick<LoadOptions, 'target' | 'transports'>): Promise<Endpoints> {
  const { status, body } = await call(`${options.target}/v1/route?uid=load-tool`);
  if (status !== 200) throw new SetupError(`GET ${options.target}/v1/route answered ${status}: ${errorCode(body)}`);
  const route = body as { mode?: string; reason?: string; endpoints?: string[]; bilibili?: { ws?: string[]; tcp?: string[] } };
  const biliWs = route.bilibili?.ws ?? [];
  // The Bilibili WebSocket is at /sub on the connector's own port: the socket.io endpoint is the same origin.
  const socketio = route.endpoints?.length ? route.endpoints : biliWs.map((u) => u.replace(/^ws/, 'http').replace(/\/sub$/, ''));
  const endpoints: Endpoints = { socketio, biliWs, biliTcp: route.bilibili?.tcp ?? [], route: { mode: route.mode ?? 'unknown', reason: route.reason } };
  const missing: [string, string[]][] = [
    ['socketio', endpoints.socketio],
    ['bilibili-ws', endpoints.biliWs],
    ['bilibili-tcp', endpoints.biliTcp],
  ];
  for (const [name, list] of missing) {
    if ((options.transports as string[]).includes(name) && list.length === 0) {
      const why = name === 'bilibili-tcp' ? ' (is DANMAKU_BILI_TCP_PORT 0 on every connector?)' : '';
      throw new SetupError(`the route lists no ${name} endpoint${why}; route answer: ${JSON.stringify(body)}. Drop it from --transports.`);
    }
  }
  return endpoints;
}

export interface Tokens {
  sender(j: number): string;
  /** A token for viewer i, or undefined: the viewer connects anonymously. */
  viewer(i: number): string | undefined;
  /** Tokens to try, in turn, for setting room aliases (admin, or streamers of the rooms). */
  moderators(rooms: string[]): Promise<string[]>;
  source: 'jwt-secret' | 'token-file' | 'dev-token';
}

async function devToken(target: string, body: Record<string, unknown>): Promise<string> {
  const { status, body: answer } = await call(`${target}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (status === 404) throw new SetupError(`${target} gives no development tokens (its secret is not the default): pass --jwt-secret or --token-file`);
  if (status !== 200) throw new SetupError(`POST ${target}/v1/dev/token answered ${status}: ${errorCode(answer)}`);
  return (answer as { token: string }).token;
}

export async function tokens(options: Pick<LoadOptions, 'target' | 'jwtSecret' | 'tokenFile' | 'senders'>, runId: string): Promise<Tokens> {
  if (options.jwtSecret !== null) {
    const auth = createAuth(options.jwtSecret);
    const day = 86_400;
    const senders = new Map<number, string>();
    return {
      source: 'jwt-secret',
      sender: (j) => senders.get(j) ?? senders.set(j, auth.sign({ sub: `load-${runId}-s${j}`, name: `load sender ${j}`, role: 'viewer' }, day)).get(j) as string,
      viewer: (i) => auth.sign({ sub: `load-${runId}-v${i}`, name: `load viewer ${i}`, role: 'viewer' }, day),
      moderators: async () => [auth.sign({ sub: `load-${runId}-admin`, name: 'load tool', role: 'admin' }, 3600)],
    };
  }
  if (options.tokenFile !== null) {
    let lines: string[];
    try {
      lines = readFileSync(options.tokenFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    } catch (err) {
      throw new SetupError(`--token-file ${options.tokenFile}: ${(err as Error).message}`);
    }
    if (lines.length === 0) throw new SetupError(`--token-file ${options.tokenFile} holds no token (one per line)`);
    const at = (i: number): string => lines[i % lines.length] as string;
    return { source: 'token-file', sender: at, viewer: at, moderators: async () => lines };
  }
  const senders: string[] = [];
  for (let j = 0; j < options.senders; j++) senders.push(await devToken(options.target, { name: `load ${runId} s${j}` }));
  return {
    source: 'dev-token',
    sender: (j) => senders[j % senders.length] as string,
    viewer: () => undefined,
    moderators: async (rooms) => {
      const out: string[] = [];
      // A development token names at most 20 rooms.
      for (let k = 0; k < rooms.length; k += 20) out.push(await devToken(options.target, { name: `load ${runId} streamer`, role: 'streamer', rooms: rooms.slice(k, k + 20) }));
      return out;
    },
  };
}

const numericRoom = (roomId: string): number | null => (/^[1-9][0-9]{0,9}$/.test(roomId) && Number(roomId) <= MAX_ALIAS ? Number(roomId) : null);

/**
 * The number a Bilibili client puts in `roomid` for each room: the id itself when it is a number,
 * the room's alias when it has one, else a new alias (hash of the id, the next free number when
 * another room holds it) set with the first token allowed to.
 */
export async function biliRoomids(target: string, roomIds: string[], tokenSource: Tokens): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const needAlias: string[] = [];
  await inBatches(roomIds, 16, async (roomId) => {
    const n = numericRoom(roomId);
    if (n !== null) return void out.set(roomId, n);
    const { status, body } = await call(`${target}/v1/rooms/${roomId}`);
    if (status !== 200) throw new SetupError(`GET /v1/rooms/${roomId} answered ${status}: ${errorCode(body)}`);
    const alias = (body as { alias?: number | null }).alias;
    if (typeof alias === 'number') out.set(roomId, alias);
    else needAlias.push(roomId);
  });
  if (needAlias.length === 0) return out;
  const candidates = await tokenSource.moderators(needAlias);
  await inBatches(needAlias, 8, async (roomId) => {
    let alias = 1_000_000_000 + (hash32(`load:${roomId}`) % 1_000_000_000);
    for (const token of candidates) {
      for (let attempt = 0; attempt < 50; attempt++) {
        const { status, body } = await call(`${target}/v1/rooms/${roomId}/alias`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ alias }),
        });
        if (status === 200) return void out.set(roomId, alias);
        if (status === 409) {
          alias = alias >= MAX_ALIAS ? 1_000_000_000 : alias + 1;
          continue;
        }
        if (status === 401 || status === 403) break;
        throw new SetupError(`PUT /v1/rooms/${roomId}/alias answered ${status}: ${errorCode(body)}`);
      }
    }
    throw new SetupError(
      `room ${roomId} has no number for Bilibili clients and no token may give it one: use a numeric --room-prefix (e.g. 9100), ` +
        'pass --jwt-secret, or put an admin or streamer token of the rooms in --token-file',
    );
  });
  return out;
}

