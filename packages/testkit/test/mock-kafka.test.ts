/**
 * Proves kafkajs 2.2.4 works against the librdkafka mock broker: explicit
 * partition produce, consumer-group consume with eachBatch, offset commits,
 * and a second consumer in the same group resuming from the committed
 * offsets. Also checks that the broker dies with the process that started it.
 *
 * Run: node --import tsx --test packages/testkit/test/mock-kafka.test.ts
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { Kafka, Partitioners, logLevel, type Consumer, type ConsumerConfig, type KafkaConfig } from 'kafkajs';
import { startMockKafka, type MockKafka } from '../src/index.js';

const TOPIC = 'testkit.mock';
const PARTITIONS = 4;
const GROUP = 'testkit-group';
const FIRST = 200; // produced before the first consumer
const SECOND = 40; // produced after the first consumer left
/** Partition whose last messages the first consumer "crashes" before committing. */
const CRASH_PARTITION = 3;
/** First consumer commits CRASH_PARTITION only below this offset. */
const CRASH_COMMIT_LIMIT = 40;

/** Client settings that work (and are quick) against the mock. */
function clientConfig(brokers: string[]): KafkaConfig {
  return {
    clientId: 'testkit',
    brokers,
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    // The mock answers instantly; short retries keep failures fast.
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
  };
}

/**
 * Consumer settings that work against the mock. Group timing in the mock
 * (librdkafka 2.0.2, rdkafka_mock_cgrp.c):
 *  - first join of an empty group waits a fixed 3000 ms (its
 *    group.initial.rebalance.delay), so sessionTimeout must be well above 3 s:
 *    with 1500 ms the member expires before the JoinGroup answer and kafkajs
 *    hangs in JoinGroup until its request timeout;
 *  - any later (re)join, including a new member right after the previous one
 *    left, waits sessionTimeout - 1000 ms. 6000 => ~5 s, 4000 => ~3 s.
 */
function consumerConfig(): ConsumerConfig {
  return {
    groupId: GROUP,
    sessionTimeout: 6000,
    rebalanceTimeout: 6000,
    heartbeatInterval: 500,
    // Short idle fetches: the second consumer waits on empty partitions.
    maxWaitTimeInMs: 100,
    // The mock has no CreateTopics; topics are created when it starts.
    allowAutoTopicCreation: false,
    retry: {
      initialRetryTime: 100,
      maxRetryTime: 1000,
      retries: 8,
      // Tests: a crashed consumer must fail the test, not restart in the
      // background (a restarting kafkajs consumer ignores disconnect() and
      // keeps the test process alive forever).
      restartOnFailure: async () => false,
    },
  };
}

interface Received {
  partition: number;
  offset: number;
  seq: number;
}

let mock: MockKafka | undefined;
/** Clients to disconnect even when an assertion fails: a kafkajs client left
 * connected to a stopped broker retries forever and keeps the process alive. */
const clients: { disconnect(): Promise<void> }[] = [];
after(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  await mock?.stop();
});

/**
 * Run `consumer` until `until()` is true; records everything it receives.
 * `commitFilter` decides, per message, whether its offset is committed.
 */
async function consumeUntil(
  consumer: Consumer,
  until: (got: Received[]) => boolean,
  commitFilter: (partition: number, offset: number) => boolean,
  timeoutMs: number,
): Promise<{ got: Received[]; joinMs: number }> {
  const got: Received[] = [];
  const started = Date.now();
  let joinMs = -1;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinMs = Date.now() - started;
  });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms with ${got.length} messages`)),
      timeoutMs,
    );
    consumer.on(consumer.events.CRASH, (e) => {
      clearTimeout(timer);
      reject(new Error(`consumer crashed: ${String(e.payload.error)}`));
    });
    consumer
      .run({
        // Commits are explicit below; kafkajs' auto-commit would also commit
        // the offsets we deliberately leave uncommitted.
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch, heartbeat }) => {
          let commitUpTo = -1;
          for (const m of batch.messages) {
            const body = JSON.parse(m.value?.toString() ?? 'null') as { seq: number; partition: number };
            assert.equal(body.partition, batch.partition, 'message landed on the partition it was sent to');
            const offset = Number(m.offset);
            got.push({ partition: batch.partition, offset, seq: body.seq });
            if (commitFilter(batch.partition, offset)) commitUpTo = offset;
          }
          if (commitUpTo >= 0) {
            // Kafka convention: the committed offset is the NEXT one to read.
            await consumer.commitOffsets([
              { topic: batch.topic, partition: batch.partition, offset: String(commitUpTo + 1) },
            ]);
          }
          await heartbeat();
          if (until(got)) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  return { got, joinMs };
}

function byPartition(got: Received[]): Map<number, Received[]> {
  const map = new Map<number, Received[]>();
  for (const r of got) {
    const list = map.get(r.partition) ?? [];
    list.push(r);
    map.set(r.partition, list);
  }
  return map;
}

test('kafkajs produce, group consume, commit and resume against the mock broker', { timeout: 90_000 }, async (t) => {
  const t0 = Date.now();
  mock = await startMockKafka({ [TOPIC]: PARTITIONS });
  t.diagnostic(`mock broker at ${mock.brokers.join(',')} in ${Date.now() - t0} ms`);
  assert.equal(mock.brokers.length, 1);
  assert.match(mock.brokers[0] ?? '', /^127\.0\.0\.1:\d+$/);

  const kafka = new Kafka(clientConfig(mock.brokers));

  // Metadata: the topic exists with the requested partitions, led by broker 1.
  const admin = kafka.admin();
  clients.push(admin);
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  assert.equal(meta.topics[0]?.partitions.length, PARTITIONS);

  const producer = kafka.producer({
    // Explicit partitions below; this only silences kafkajs' v2 partitioner warning.
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  clients.push(producer);
  await producer.connect();

  // seq is global and increasing; partition = seq % 4, so each partition gets
  // an increasing subsequence and we can check per-partition order exactly.
  const send = async (from: number, count: number): Promise<void> => {
    const messages = Array.from({ length: count }, (_, k) => {
      const seq = from + k;
      const partition = seq % PARTITIONS;
      return { partition, key: `k${seq}`, value: JSON.stringify({ seq, partition }) };
    });
    // Two sends of half each: more than one produce request per partition.
    const half = Math.ceil(messages.length / 2);
    await producer.send({ topic: TOPIC, acks: -1, messages: messages.slice(0, half) });
    await producer.send({ topic: TOPIC, acks: -1, messages: messages.slice(half) });
  };

  let t1 = Date.now();
  await send(0, FIRST);
  t.diagnostic(`produced ${FIRST} messages in ${Date.now() - t1} ms`);

  const end = await admin.fetchTopicOffsets(TOPIC);
  for (const p of end) assert.equal(p.high, String(FIRST / PARTITIONS), `high watermark of partition ${p.partition}`);

  // --- consumer A: reads all 200, commits all except CRASH_PARTITION >= limit.
  const a = kafka.consumer(consumerConfig());
  clients.push(a);
  t1 = Date.now();
  const runA = await consumeUntil(
    a,
    (got) => got.length >= FIRST,
    (partition, offset) => partition !== CRASH_PARTITION || offset < CRASH_COMMIT_LIMIT,
    30_000,
  );
  t.diagnostic(`consumer A: joined in ${runA.joinMs} ms, ${runA.got.length} messages after ${Date.now() - t1} ms`);
  assert.equal(runA.got.length, FIRST, 'no duplicates in the first run');
  const partsA = byPartition(runA.got);
  assert.equal(partsA.size, PARTITIONS);
  for (const [partition, list] of partsA) {
    assert.deepEqual(
      list.map((r) => r.offset),
      Array.from({ length: FIRST / PARTITIONS }, (_, i) => i),
      `partition ${partition}: contiguous offsets from 0 in order`,
    );
    assert.deepEqual(
      list.map((r) => r.seq),
      Array.from({ length: FIRST / PARTITIONS }, (_, i) => i * PARTITIONS + partition),
      `partition ${partition}: produced order preserved`,
    );
  }
  t1 = Date.now();
  await a.disconnect(); // sends LeaveGroup
  t.diagnostic(`consumer A disconnected in ${Date.now() - t1} ms`);

  // Committed offsets are visible through the admin API (OffsetFetch).
  const committed = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  const committedBy = new Map(committed[0]?.partitions.map((p) => [p.partition, p.offset]));
  for (let p = 0; p < PARTITIONS; p++) {
    const want = p === CRASH_PARTITION ? CRASH_COMMIT_LIMIT : FIRST / PARTITIONS;
    assert.equal(committedBy.get(p), String(want), `committed offset of partition ${p}`);
  }

  // More traffic while nobody is consuming.
  await send(FIRST, SECOND);

  // --- consumer B: same group, must resume from the committed offsets.
  const uncommitted = FIRST / PARTITIONS - CRASH_COMMIT_LIMIT;
  const expectB = SECOND + uncommitted;
  const b = kafka.consumer(consumerConfig());
  clients.push(b);
  t1 = Date.now();
  const runB = await consumeUntil(b, (got) => got.length >= expectB, () => true, 30_000);
  t.diagnostic(`consumer B: joined in ${runB.joinMs} ms, ${runB.got.length} messages after ${Date.now() - t1} ms`);
  // Give a stray redelivery a moment to show up before asserting exact counts.
  await new Promise((r) => setTimeout(r, 300));
  await b.disconnect();

  assert.equal(runB.got.length, expectB, 'only uncommitted + new messages are delivered');
  const partsB = byPartition(runB.got);
  for (let p = 0; p < PARTITIONS; p++) {
    const firstOffset = p === CRASH_PARTITION ? CRASH_COMMIT_LIMIT : FIRST / PARTITIONS;
    const lastOffset = (FIRST + SECOND) / PARTITIONS - 1;
    assert.deepEqual(
      (partsB.get(p) ?? []).map((r) => r.offset),
      Array.from({ length: lastOffset - firstOffset + 1 }, (_, i) => firstOffset + i),
      `partition ${p}: resumed at its committed offset ${firstOffset}`,
    );
    const seqs = (partsB.get(p) ?? []).map((r) => r.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `partition ${p}: order preserved`);
  }

  await producer.disconnect();
  await admin.disconnect();
  await mock.stop();
  t.diagnostic(`total ${Date.now() - t0} ms`);
});

/** True when something accepts TCP connections on host:port. */
function canConnect(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('the broker exits when the process that started it is SIGKILLed', { timeout: 30_000 }, async () => {
  // A child node process starts a mock and prints its address, then we kill -9
  // it: no cleanup code runs, only the closed stdin pipe can stop the broker.
  const script = `
    import { startMockKafka } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    const m = await startMockKafka({ orphan: 1 });
    console.log('READY ' + m.brokers[0]);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const addr = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = /READY (\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  assert.equal(await canConnect(addr), true, 'broker is up while its parent lives');
  child.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while ((await canConnect(addr)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await canConnect(addr), false, 'broker stopped after its parent died');
});
