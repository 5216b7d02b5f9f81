/**
 * The Kafka bus on a three-broker Apache Kafka cluster (replication 3, min.insync.replicas 2):
 * what a real broker adds to the contract suite. A broker killed -9 while records flow loses none
 * that were acknowledged; a group member killed -9 hands its partitions to the others within its
 * session timeout, and a member that joins takes a share, with nothing lost either way.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BusUnavailableError, KafkaBus, type Consumer } from '@danmaku/bus';
import { sleep, spawnTs, startKafka, waitFor, type TestKafka } from '@danmaku/testkit';

const PARTITIONS = 4;
let kafka: TestKafka;
const buses: KafkaBus[] = [];
const consumers: Consumer[] = [];

before(async () => {
  kafka = await startKafka({ nodes: 3 });
});

after(async () => {
  for (const c of consumers) await c.stop().catch(() => undefined);
  for (const b of buses) await b.close().catch(() => undefined);
  await kafka.stop();
});

function openBus(clientId: string): KafkaBus {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId, partitions: PARTITIONS, produceTimeoutMs: 3000, sessionTimeoutMs: 3000 });
  buses.push(bus);
  return bus;
}

/** Every value of a topic, read by a group of its own from the start. */
async function readAll(topic: string, expected: Set<string>): Promise<Set<string>> {
  const seen = new Set<string>();
  const consumer = await openBus(`reader-${topic}`).consume({
    topic,
    groupId: `reader-${topic}`,
    handle: async (batch) => {
      for (const r of batch.records) seen.add(r.value);
    },
  });
  consumers.push(consumer);
  await waitFor(`every acknowledged record of ${topic} read back`, () => [...expected].every((v) => seen.has(v)), 60_000, 200).catch(() => undefined);
  await consumer.stop();
  return seen;
}

it('topics are created by the bus with replication 3 and min.insync.replicas 2', async () => {
  const bus = openBus('creator');
  await bus.ensureTopic('created');
  const leader = await kafka.leaderOf('created', 0);
  assert.ok(leader, 'partition 0 has a leader');
});

it('a broker killed -9 while records flow (the leader of a partition) loses nothing acknowledged', { timeout: 120_000 }, async () => {
  const topic = 'broker-death';
  const bus = openBus('producer');
  await bus.ensureTopic(topic);
  const victim = await kafka.leaderOf(topic, 0);
  assert.ok(victim);
  const acked = new Set<string>();
  let refused = 0;
  let killedAt = 0;
  let firstAckAfterKill = 0;
  const deadline = Date.now() + 12_000;
  let i = 0;
  const inFlight: Promise<void>[] = [];
  while (Date.now() < deadline) {
    const value = `v${i}`;
    inFlight.push(
      bus.produce(topic, [{ key: `k${i}`, value, partition: i % PARTITIONS }]).then(
        () => {
          acked.add(value);
          if (killedAt && !firstAckAfterKill) firstAckAfterKill = Date.now();
        },
        (err: unknown) => {
          assert.ok(err instanceof BusUnavailableError, String(err));
          refused++;
        },
      ),
    );
    i++;
    if (i === 300) {
      killedAt = Date.now();
      void victim.kill('SIGKILL');
    }
    await sleep(5);
  }
  await Promise.all(inFlight);
  assert.ok(killedAt > 0 && firstAckAfterKill > 0, 'sends were acknowledged again after the kill');
  process.stdout.write(`# ${i} produced, ${acked.size} acknowledged, ${refused} refused; acknowledged again ${firstAckAfterKill - killedAt} ms after the kill\n`);
  await victim.start();
  const seen = await readAll(topic, acked);
  const lost = [...acked].filter((v) => !seen.has(v));
  assert.deepEqual(lost, [], 'acknowledged records missing from the topic');
});

it('every broker down for 20 s: sends are refused fast meanwhile, and the bus takes writes again by itself', { timeout: 150_000 }, async () => {
  const topic = 'outage';
  const bus = openBus('outage-producer');
  await bus.ensureTopic(topic);
  const acked = new Set<string>();
  const refusedMs: number[] = [];
  let i = 0;
  const send = async (): Promise<boolean> => {
    const value = `o${i++}`;
    const started = Date.now();
    try {
      await bus.produce(topic, [{ key: value, value, partition: i % PARTITIONS }]);
      acked.add(value);
      return true;
    } catch (err) {
      assert.ok(err instanceof BusUnavailableError, String(err));
      refusedMs.push(Date.now() - started);
      return false;
    }
  };
  for (let k = 0; k < 50; k++) assert.ok(await send(), 'writes go through before the outage');
  await Promise.all(kafka.nodes.map((n) => n.kill('SIGKILL')));
  const downUntil = Date.now() + 20_000;
  while (Date.now() < downUntil) {
    await send();
    await sleep(50);
  }
  assert.equal(bus.healthy(), false, 'the bus says it is unhealthy while Kafka is down');
  // After the first refusals (each waits for the produce deadline) every send is refused at once.
  const later = refusedMs.slice(5).sort((a, b) => a - b);
  assert.ok(later.length > 50, `sends refused during the outage: ${refusedMs.length}`);
  const p99 = later[Math.ceil(later.length * 0.99) - 1] as number;
  assert.ok(p99 < 100, `refusals answered in p99 ${p99} ms`);
  const back = Date.now();
  await Promise.all(kafka.nodes.map((n) => n.start()));
  await waitFor('a write acknowledged again', () => send(), 90_000, 200);
  process.stdout.write(`# ${refusedMs.length} refused in the outage (p99 ${p99} ms); writes again ${Date.now() - back} ms after the brokers were started\n`);
  assert.equal(bus.healthy(), true);
  const seen = await readAll(topic, acked);
  assert.deepEqual([...acked].filter((v) => !seen.has(v)), [], 'acknowledged records missing from the topic');
});

it('a member killed -9 hands its partitions over, a member that joins takes a share; nothing lost', { timeout: 120_000 }, async () => {
  const topic = 'members';
  const group = 'members-group';
  const bus = openBus('members-producer');
  await bus.ensureTopic(topic);
  const handledHere = new Set<string>();
  const partitionsHere = new Set<number>();
  const here = await openBus('member-here').consume({
    topic,
    groupId: group,
    handle: async (batch) => {
      partitionsHere.add(batch.partition);
      for (const r of batch.records) handledHere.add(r.value);
    },
  });
  consumers.push(here);
  const produced: string[] = [];
  let n = 0;
  const produce = async (count: number): Promise<void> => {
    for (let k = 0; k < count; k++, n++) {
      await bus.produce(topic, [{ key: `k${n}`, value: `m${n}`, partition: n % PARTITIONS }]);
      produced.push(`m${n}`);
    }
  };

  // A second member joins: the group rebalances and it takes a share.
  const other = spawnTs('packages/bus/test/fixtures/member.ts', {}, [kafka.brokers.join(','), topic, group, String(PARTITIONS)]);
  await other.waitForOutput(/member running/);
  await produce(40);
  await waitFor('the joined member handles records of its own', () => /handled m/.test(other.output()), 30_000);
  const handledThere = (): Set<string> => new Set([...other.output().matchAll(/handled (m\d+)/g)].map((m) => m[1] as string));
  partitionsHere.clear();
  await produce(40);
  await waitFor('both members handled the second round', () => produced.slice(40).every((v) => handledHere.has(v) || handledThere().has(v)), 30_000);
  assert.ok(partitionsHere.size > 0 && partitionsHere.size < PARTITIONS, `the partitions are split (here: ${[...partitionsHere]})`);

  // It dies without leaving the group: its partitions come here after the session timeout.
  const killedAt = Date.now();
  await other.kill('SIGKILL');
  partitionsHere.clear();
  await produce(40);
  await waitFor('every partition handled here after the member died', () => partitionsHere.size === PARTITIONS, 30_000, 50);
  const handover = Date.now() - killedAt;
  process.stdout.write(`# partitions handed over ${handover} ms after the member was killed\n`);
  const there = handledThere();
  await waitFor('every record handled by one member or the other', () => produced.every((v) => handledHere.has(v) || there.has(v)), 30_000);
});
