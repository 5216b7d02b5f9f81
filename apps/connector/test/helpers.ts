import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import { spawnTs, tokenFor, waitFor, type Spawned } from '@danmaku/testkit';

export interface ConnectorProcess {
  proc: Spawned;
  url: string;
  nodeId: string;
}

/** A connector as a real process of its own (so a test can kill it). */
export async function spawnConnector(env: Record<string, string>, nodeFlags: string[] = []): Promise<ConnectorProcess> {
  const proc = spawnTs('apps/connector/src/main.ts', { LOG_LEVEL: 'warn', CONNECTOR_PORT: '0', KAFKA_BROKERS: '', ...env }, [], nodeFlags);
  await proc.waitForOutput(/connector \S+ listening on \S+/);
  const match = /connector (\S+) listening on (\S+)/.exec(proc.output()) as RegExpExecArray;
  return { proc, nodeId: match[1] as string, url: match[2] as string };
}

/**
 * A socket.io client over WebSocket that does not reconnect, resolved once connected. It goes into
 * `opened` first, so the caller closes it afterwards even if the handshake was refused.
 */
export function connectSocket(url: string, token: string | undefined, opened: Socket[]): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, auth: token ? { token } : {} });
  opened.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** Sends n comments over HTTP as `user`; loopback senders are exempt from the per-IP limit. */
export async function sendComments(baseUrl: string, roomId: string, n: number, prefix: string, user = 'sender'): Promise<string[]> {
  const token = tokenFor(user);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${baseUrl}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `${prefix} ${i}` }),
    });
    const text = await res.text();
    assert.equal(res.status, 202, text);
    ids.push((JSON.parse(text) as { id: string }).id);
  }
  return ids;
}

/**
 * Proves nothing more arrives without waiting a fixed time: sends one more comment and waits
 * until `got` holds it. A room is delivered in seq order, so whatever was sent before the
 * sentinel has arrived by then. Returns the ids received before the sentinel.
 */
export async function idsBeforeSentinel(baseUrl: string, roomId: string, got: readonly { id: string }[]): Promise<string[]> {
  const [sentinel] = await sendComments(baseUrl, roomId, 1, 'sentinel');
  await waitFor(`the sentinel ${sentinel} in ${roomId}`, () => got.some((m) => m.id === sentinel));
  const ids = got.map((m) => m.id);
  assert.equal(ids.at(-1), sentinel, 'nothing arrives after the sentinel');
  return ids.slice(0, -1);
}

/** The last `report {json}` line a fixture printed after being asked on stdin. */
export async function report<T>(proc: Spawned): Promise<T> {
  const before = proc.output().lastIndexOf('report ');
  proc.child.stdin?.write('report\n');
  await waitFor('a report line', () => proc.output().lastIndexOf('report ') > before && proc.output().endsWith('\n'), 5000, 20);
  const text = proc.output();
  const line = text.slice(text.lastIndexOf('report ') + 7, text.indexOf('\n', text.lastIndexOf('report ')));
  return JSON.parse(line) as T;
}

/** Waits until `check(report)` holds, asking the fixture again and again. */
export async function waitForReport<T>(what: string, proc: Spawned, check: (r: T) => boolean, timeoutMs = 15_000): Promise<T> {
  let last: T | null = null;
  try {
    await waitFor(what, async () => {
      last = await report<T>(proc);
      return check(last);
    }, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last report: ${JSON.stringify(last)?.slice(0, 2000)}`);
  }
  return last as T;
}

export async function metricValue(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (want.every((w) => rest.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Every id once, in the order sent (seq order), nothing else. */
export function assertExactlyOnceInOrder(got: { ids: string[]; seqs: number[] }, sent: string[], who: string): void {
  assert.deepEqual(got.ids, sent, `${who}: every message once, in order`);
  for (let i = 1; i < got.seqs.length; i++) assert.ok((got.seqs[i] as number) > (got.seqs[i - 1] as number), `${who}: seqs increase`);
}
