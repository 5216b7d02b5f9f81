/** Helpers shared by the hot-room tests (cache, switches, likes, replica). */
import { Redis } from 'ioredis';

/** The value of one Prometheus sample (0 when absent), e.g. metric(text, 'danmaku_polls_total', { source: 'cache' }). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const wanted = Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** Calls per command from INFO commandstats: a real count of what a Redis server executed. */
export async function commandStats(url: string): Promise<Record<string, number>> {
  const redis = new Redis(url, { lazyConnect: false });
  try {
    const text = await redis.info('commandstats');
    const out: Record<string, number> = {};
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[match[1] as string] = Number(match[2]);
    return out;
  } finally {
    redis.disconnect();
  }
}

export function delta(before: Record<string, number>, after: Record<string, number>, commands: string[]): number {
  return commands.reduce((sum, c) => sum + (after[c] ?? 0) - (before[c] ?? 0), 0);
}

/** Every command except the ones the measurement itself sends. */
export function totalDelta(before: Record<string, number>, after: Record<string, number>): number {
  let sum = 0;
  for (const [c, n] of Object.entries(after)) if (c !== 'info' && c !== 'client|setname' && c !== 'client') sum += n - (before[c] ?? 0);
  return sum;
}

export interface PollPage {
  messages: { id: string; seq: number; type: string; ts: number; content?: string; gift?: { giftId: string; count: number }; user: { id: string; name: string } }[];
  cursor: string;
  skipped: boolean;
  retryAfterMs: number;
}

export async function poll(url: string, roomId: string, query: Record<string, string | number> = {}): Promise<PollPage> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  const res = await fetch(`${url}/v1/rooms/${roomId}/messages${qs ? `?${qs}` : ''}`);
  if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PollPage;
}

export async function send(url: string, token: string, roomId: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/v1/rooms/${roomId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export async function post(url: string, path: string, token: string | null, body?: unknown, method = 'POST'): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
