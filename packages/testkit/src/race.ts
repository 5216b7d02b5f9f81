import assert from 'node:assert/strict';
import type { Config } from '@danmaku/config';
import type { Message } from '@danmaku/protocol';
import { tokenFor, uniqueRoom } from './harness.js';

export interface RaceOptions {
  writers: number;
  pollers: number;
  messagesPerWriter: number;
  /** Every `giftEvery`-th message of a writer is a gift, the rest comments. */
  giftEvery?: number;
  /**
   * How long the pollers may take to see everything once the writers are done. Counted from the
   * last write, not from the start: on a loaded machine the writes alone can take minutes.
   */
  timeoutMs?: number;
  config?: Config;
}

export interface RaceOutcome {
  room: string;
  accepted: number;
  /** Per poller: messages seen. */
  seen: number[];
  polls: number;
  /** From the first send to the last 202. */
  writeMs: number;
  /** From the first send until every poller had everything. */
  totalMs: number;
}

/**
 * The Meipai race, as a test: writers send concurrently into one room while pollers follow it
 * with cursors. Every poller must end with every accepted message exactly once, and within
 * each type seq must grow by exactly one from poll to poll (no gap, no repeat, never skipped).
 */
export async function runRace(baseUrl: string, options: RaceOptions): Promise<RaceOutcome> {
  const room = uniqueRoom('race');
  const giftEvery = options.giftEvery ?? 5;
  const catchUpMs = options.timeoutMs ?? 60_000;
  let writesEndedAt = 0;
  const accepted = new Set<string>();
  let writing = true;
  let failed = false;
  let polls = 0;

  const writer = async (w: number): Promise<void> => {
    const token = tokenFor(`writer${w}`, 'viewer', undefined, options.config);
    for (let i = 0; i < options.messagesPerWriter && !failed; i++) {
      const body = i % giftEvery === 0 ? { type: 'gift', giftId: 'rose', count: 1 + (i % 3) } : { type: 'comment', content: `w${w} #${i}` };
      for (;;) {
        const res = await fetch(`${baseUrl}/v1/rooms/${room}/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        if (res.status === 202) {
          accepted.add(((await res.json()) as { id: string }).id);
          break;
        }
        // 429/503 are allowed answers under load; anything else is a bug.
        assert.ok(res.status === 429 || res.status === 503, `send answered ${res.status}: ${await res.text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };

  const poll = async (cursor: string | undefined) => {
    const query = new URLSearchParams({ types: 'comment,gift', limit: '200' });
    if (cursor) query.set('cursor', cursor);
    let res = await fetch(`${baseUrl}/v1/rooms/${room}/messages?${query}`);
    // 503 means "try again" (Redis slower than its command timeout on a loaded machine), as
    // API.md tells clients; anything else but 200 is a failure.
    while (res.status === 503) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
      res = await fetch(`${baseUrl}/v1/rooms/${room}/messages?${query}`);
    }
    assert.equal(res.status, 200, await res.clone().text());
    polls++;
    return (await res.json()) as { messages: Message[]; cursor: string; skipped: boolean };
  };

  /** Each poller takes its first cursor before anyone writes, so "every message" is well defined. */
  const startCursors = await Promise.all(Array.from({ length: options.pollers }, () => poll(undefined).then((p) => p.cursor)));

  const poller = async (start: string): Promise<number> => {
    const ids = new Set<string>();
    const lastSeq: Record<string, number> = {};
    let cursor = start;
    for (;;) {
      assert.ok(writing || Date.now() < writesEndedAt + catchUpMs, `poller timed out with ${ids.size}/${accepted.size} messages`);
      const page = await poll(cursor);
      assert.equal(page.skipped, false, 'a poller following the room was told it skipped');
      for (const m of page.messages) {
        const prev = lastSeq[m.type] ?? 0;
        assert.equal(m.seq, prev + 1, `${m.type}: seq ${m.seq} after ${prev} (gap or repeat)`);
        lastSeq[m.type] = m.seq;
        assert.ok(!ids.has(m.id), `message ${m.id} seen twice`);
        ids.add(m.id);
      }
      cursor = page.cursor;
      if (!writing && ids.size >= accepted.size) {
        for (const id of accepted) assert.ok(ids.has(id), `accepted message ${id} never seen`);
        assert.equal(ids.size, accepted.size);
        return ids.size;
      }
      if (page.messages.length === 0) await new Promise((r) => setTimeout(r, 10));
    }
  };

  const pollers = Promise.all(startCursors.map((start) => poller(start)));
  // A poller that fails stops the writers too, and its error is the one reported.
  pollers.catch(() => (failed = true));
  const started = Date.now();
  await Promise.all(Array.from({ length: options.writers }, (_, w) => writer(w)));
  const writeMs = Date.now() - started;
  writing = false;
  writesEndedAt = Date.now();
  const seen = await pollers;
  return { room, accepted: accepted.size, seen, polls, writeMs, totalMs: Date.now() - started };
}
