/**
 * What polls of many small rooms cost Redis, counted by the Redis server itself (INFO
 * commandstats, script calls and the commands they run alike), with comments flowing: shared by
 * the poll-memory test and the poll bench.
 */
import { Redis } from 'ioredis';
import { sleep, waitFor } from './harness.js';

export interface PollCostOptions {
  /** A front (or standalone) that answers polls and takes sends. */
  url: string;
  /** The Redis it uses, private to the measurement: every command there is counted. */
  redisUrl: string;
  /** A sender's token (per-user limits must allow the flow). */
  token: string;
  rooms: string[];
  /** Polls to count (the run lasts as long as they take). */
  polls: number;
  /** Each room is polled this often, with a cursor chain (500 ms: the small-room pace). */
  intervalMs?: number;
  /** One comment into a random room per this many polls (20: 20 comments/s at 400 polls/s). */
  pollsPerComment?: number;
}

export interface PollCost {
  /** Redis commands per poll beyond the sends' own and the servers' timers. */
  perPoll: number;
  polls: number;
  comments: number;
  seconds: number;
  /** Each comment: its room and when its send was accepted (202). */
  accepted: Map<string, { room: string; at: number }>;
  /** Each room's polls: when each started and the messages (id, seq) it returned. */
  pollsOf: Map<string, { started: number; messages: { id: string; seq: number }[] }[]>;
}

async function commandCalls(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const text = await redis.info('commandstats');
    let sum = 0;
    // The measurement's own commands (INFO, the connection's name) are not counted.
    for (const [, name, calls] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (name !== 'info' && !name?.startsWith('client')) sum += Number(calls);
    return sum;
  } finally {
    redis.disconnect();
  }
}

async function metricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/**
 * Every room gets a comment first, so per-room work a send starts (the moderation mirror's
 * periodic reloads, counted by its metric and taken off) is there in every phase. The servers
 * should run with gear changes off (DANMAKU_GEAR_UP_MS high): a loaded machine delays the
 * processor, and the gears it then publishes are the sends' work, not the polls'. Then: the
 * servers idle (their timers, per ms), the sends alone (the same number into the same rooms,
 * before anyone polls them), and the polls with the sends. Comments are paced by polls, so the
 * ratio holds on a loaded machine too.
 */
export async function measurePollCost(options: PollCostOptions): Promise<PollCost> {
  const { url, redisUrl, token, rooms } = options;
  const interval = options.intervalMs ?? 500;
  const perComment = options.pollsPerComment ?? 20;
  const snapshot = async () => ({ commands: await commandCalls(redisUrl), reloads: await metricSum(url, 'danmaku_moderation_mirror_reloads_total') });
  const counted = async (since: { commands: number; reloads: number }) => {
    const now = await snapshot();
    // A reload reads the room's bans, mutes and slow mode: three commands.
    return now.commands - since.commands - 3 * (now.reloads - since.reloads);
  };
  const poll = async (room: string, cursor?: string) => {
    const res = await fetch(`${url}/v1/rooms/${encodeURIComponent(room)}/messages${cursor ? `?cursor=${cursor}` : ''}`);
    if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { messages: { id: string; seq: number }[]; cursor: string };
  };
  const sendOne = async (room: string, accepted: Map<string, { room: string; at: number }>) => {
    const at = Date.now();
    const res = await fetch(`${url}/v1/rooms/${encodeURIComponent(room)}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `c${accepted.size}` }),
    });
    if (res.status !== 202) throw new Error(`send answered ${res.status}: ${await res.text()}`);
    accepted.set(((await res.json()) as { id: string }).id, { room, at });
  };
  const pick = () => rooms[Math.floor(Math.random() * rooms.length)] as string;

  const first = new Map<string, { room: string; at: number }>();
  await Promise.all(rooms.map((room) => sendOne(room, first)));
  await waitFor('a comment stored in every room', async () => (await Promise.all(rooms.map(async (r) => (await poll(r)).messages.length))).every((n) => n >= 1), 30_000, 200);

  let since = await snapshot();
  let started = Date.now();
  await sleep(2000);
  const idlePerMs = (await counted(since)) / (Date.now() - started);

  const quiet = new Map<string, { room: string; at: number }>();
  since = await snapshot();
  started = Date.now();
  const quietSends: Promise<void>[] = [];
  for (let i = 0; i < options.polls / perComment; i++) {
    quietSends.push(sendOne(pick(), quiet));
    await sleep(50);
  }
  await Promise.all(quietSends);
  await sleep(300);
  const sendsOnly = (await counted(since)) - idlePerMs * (Date.now() - started);

  const cursors = new Map<string, string>();
  await Promise.all(rooms.map(async (room) => cursors.set(room, (await poll(room)).cursor)));
  const accepted = new Map<string, { room: string; at: number }>();
  const pollsOf: PollCost['pollsOf'] = new Map(rooms.map((r) => [r, []]));
  const sends: Promise<void>[] = [];
  let polls = 0;
  let done = false;
  since = await snapshot();
  started = Date.now();
  const pollers = rooms.map(async (room, k) => {
    await sleep((k * interval) / rooms.length);
    // Two more rounds after the last comment, so that each comment is due in some poll.
    let after = 0;
    while (!done || after++ < 2) {
      const began = Date.now();
      const page = await poll(room, cursors.get(room));
      polls++;
      cursors.set(room, page.cursor);
      pollsOf.get(room)?.push({ started: began, messages: page.messages.map((m) => ({ id: m.id, seq: m.seq })) });
      if (!done && polls % perComment === 0) sends.push(sendOne(pick(), accepted));
      await sleep(Math.max(0, began + interval - Date.now()));
    }
  });
  await waitFor('the polls', () => polls >= options.polls, 300_000, 20);
  done = true;
  await Promise.all(pollers);
  await Promise.all(sends);
  const withPolls = (await counted(since)) - idlePerMs * (Date.now() - started);
  // Scaled to the same number of sends, should the two flows differ by one.
  const sendsCost = (sendsOnly / Math.max(1, quiet.size)) * accepted.size;
  return { perPoll: (withPolls - sendsCost) / polls, polls, comments: accepted.size, seconds: (Date.now() - started) / 1000, accepted, pollsOf };
}
