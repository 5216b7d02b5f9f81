import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, LOAD_ENV, readRoom, runRace, spawnTs, startKafka, tokenFor, uniqueRoom, type TestKafka, type Spawned } from '@danmaku/testkit';

/**
 * The split roles as real processes over Apache Kafka (a broker of the test's own): front(s) produce,
 * the processor consumes with a consumer group, under LOAD_ENV (no throttling limits).
 */
let kafka: TestKafka;
let front: Spawned;
let frontUrl: string;
const processors: Spawned[] = [];

async function startProcessor(): Promise<Spawned> {
  const processor = spawnTs('apps/processor/src/main.ts', { ...LOAD_ENV, KAFKA_BROKERS: kafka.brokers.join(','), PROCESSOR_PORT: String(await freePort()) });
  processors.push(processor);
  await processor.waitForOutput(/processor consuming/);
  return processor;
}

before(async () => {
  kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
  const port = await freePort();
  front = spawnTs('apps/front/src/main.ts', { ...LOAD_ENV, KAFKA_BROKERS: kafka.brokers.join(','), PORT: String(port) });
  await front.waitForOutput(/front listening/);
  frontUrl = `http://127.0.0.1:${port}`;
});

after(async () => {
  await Promise.all(processors.map((p) => p.kill('SIGKILL')));
  await front.kill();
  await kafka.stop();
});

describe('over Kafka (kafkajs against an Apache Kafka broker)', () => {
  test('Meipai race: 8 writers, 8 pollers, 5,200 messages, each seen once in seq order', async () => {
    await startProcessor();
    const outcome = await runRace(frontUrl, { writers: 8, pollers: 8, messagesPerWriter: 650, timeoutMs: 120_000 });
    process.stdout.write(`# race: writes ${outcome.writeMs} ms, all seen by all pollers ${outcome.totalMs} ms, ${outcome.polls} polls\n`);
    assert.equal(outcome.accepted, 5200);
    assert.deepEqual(outcome.seen, Array(8).fill(5200));
    await processors.pop()?.kill();
  });

  test('a processor killed (SIGKILL) mid-stream and restarted loses and duplicates nothing acknowledged', async () => {
    const room = uniqueRoom('crash');
    let processor = await startProcessor();
    const token = tokenFor('crash-writer');
    const accepted: string[] = [];
    const total = 3000;
    let killedAt = -1;
    const send = async (i: number): Promise<void> => {
      const res = await fetch(`${frontUrl}/v1/rooms/${room}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: `m${i}` }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      accepted.push(((await res.json()) as { id: string }).id);
    };
    // Four concurrent senders keep batches flowing while the processor dies.
    let next = 0;
    const sender = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        await send(i);
        if (i === 1000 && killedAt < 0) {
          killedAt = i;
          await processor.kill('SIGKILL');
        }
        if (i === 1500) processor = await startProcessor();
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    assert.equal(accepted.length, total);

    // Read the room from the start until everything accepted is visible.
    const stored = await readRoom(frontUrl, room, {
      until: (read) => read.length >= total,
      timeoutMs: 60_000,
      intervalMs: 20,
      onPage: (page) => assert.equal(page.skipped, false),
    });
    const ids = stored.map((m) => m.id);
    const seqs = stored.map((m) => m.seq);
    assert.equal(new Set(ids).size, ids.length, 'a message was stored twice');
    assert.deepEqual(new Set(ids), new Set(accepted), 'stored set differs from the acknowledged set');
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), 'seq is not 1..n without gaps');
    const metrics = await fetch(`http://127.0.0.1:${/"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(processor.output())?.[1]}/metrics`).then((r) => r.text());
    const dups = /danmaku_processor_duplicates_total (\d+)/.exec(metrics)?.[1];
    process.stdout.write(`# redelivered duplicates dropped after the restart: ${dups ?? 'n/a'}\n`);
  });
});
