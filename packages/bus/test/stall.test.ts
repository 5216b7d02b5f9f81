/**
 * A broker that stalls (SIGSTOP: sockets open, nothing answered) and comes back must not leave
 * the bus stuck: writes fail fast while it is gone and succeed again after, and every consumer
 * group gets every acknowledged record once the broker answers again.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BusUnavailableError, KafkaBus, type Consumer } from '@danmaku/bus';
import { createLogger } from '@danmaku/observability';
import { startKafka, waitFor, type TestKafka } from '@danmaku/testkit';

const TOPIC = 'stall';
const PARTITIONS = 4;
const STALL_MS = 10_000;

let kafka: TestKafka;
const buses: KafkaBus[] = [];
const consumers: Consumer[] = [];

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: PARTITIONS } });
});

after(async () => {
  for (const c of consumers) await c.stop().catch(() => undefined);
  for (const b of buses) await b.close().catch(() => undefined);
  await kafka.stop();
});

function openBus(clientId: string): KafkaBus {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId, partitions: PARTITIONS, produceTimeoutMs: 2000, sessionTimeoutMs: 6000, logger: process.env.STALL_LOG ? createLogger(clientId, 'warn') : undefined });
  buses.push(bus);
  return bus;
}

/** The record the processor group is handling when the broker stalls. */
const GATE = 'm20';
let gateReached = false;
let resumed = false;

const record = (i: number) => ({ key: `k${i % 7}`, value: `m${i}`, partition: i % PARTITIONS });

it('recovers from a 10 s broker stall without losing an acknowledged record', { timeout: 90_000 }, async () => {
  const producer = openBus('stall-front');
  await producer.connect();
  const seen = { processor: new Map<string, number>(), archiver: new Map<string, number>() };
  for (const group of ['processor', 'archiver'] as const) {
    const bus = openBus(`stall-${group}`);
    consumers.push(
      await bus.consume({
        topic: TOPIC,
        groupId: `stall-${group}`,
        // As the roles consume: the processor every partition at once with a short linger, the
        // archiver with a long one (a fetch then waits on the broker for bytes).
        concurrency: group === 'processor' ? PARTITIONS : 1,
        lingerMs: group === 'processor' ? 5 : 200,
        handle: async (batch) => {
          // The processor's write in flight across the stall: its commit then reaches a group
          // that has forgotten the member (the session expired meanwhile).
          if (group === 'processor' && batch.records.some((r) => r.value === GATE) && !resumed) {
            gateReached = true;
            await waitFor('the broker to resume', () => resumed, 60_000, 50);
          }
          for (const r of batch.records) seen[group].set(r.value, (seen[group].get(r.value) ?? 0) + 1);
        },
      }),
    );
  }

  const acked = new Set<string>();
  let i = 0;
  const send = async (): Promise<boolean> => {
    const r = record(i++);
    try {
      await producer.produce(TOPIC, [r]);
      acked.add(r.value);
      return true;
    } catch (err) {
      assert.ok(err instanceof BusUnavailableError, `unexpected ${String(err)}`);
      return false;
    }
  };

  for (let n = 0; n < 20; n++) assert.ok(await send(), 'broker up: sends succeed');
  await waitFor('consumers caught up before the stall', () => [...acked].every((v) => seen.processor.has(v) && seen.archiver.has(v)), 45_000);

  assert.ok(await send(), 'the gate record is accepted');
  await waitFor('the processor to hold the gate batch', () => gateReached, 45_000);
  kafka.pause();
  const stalledAt = Date.now();
  let failed = 0;
  while (Date.now() - stalledAt < STALL_MS) {
    const t = Date.now();
    if (!(await send())) {
      failed++;
      // The front answers 503 from this; it must come within the produce timeout, not hang.
      assert.ok(Date.now() - t < 4000, `a stalled send took ${Date.now() - t} ms`);
    }
  }
  kafka.resume();
  resumed = true;
  assert.ok(failed > 0, 'sends fail while the broker is stalled');

  // Writes come back by themselves, then keep working.
  await waitFor('a send succeeds after the broker resumed', () => send(), 30_000, 200);
  for (let n = 0; n < 20; n++) await waitFor('send after resume', () => send(), 10_000, 100);

  await waitFor(
    'both groups consumed every acknowledged record',
    () => [...acked].every((v) => seen.processor.has(v) && seen.archiver.has(v)),
    45_000,
    100,
  );
  assert.ok(acked.size >= 42);
});
