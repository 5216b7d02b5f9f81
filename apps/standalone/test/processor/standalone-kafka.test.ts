import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { readRoom, startKafka, testConfig, tokenFor, uniqueRoom, type TestKafka } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';

/**
 * Standalone with KAFKA_BROKERS set runs the split roles' pipeline in one process: its sends go
 * through the broker, not through memory. (For a while they silently did not, and every bench row
 * "over Kafka" measured the in-memory bus beside an idle broker.)
 */
const TOPIC = 'danmaku.standalone-kafka';
const db = testDatabase('standalone_kafka');
let kafka: TestKafka;
let system: Standalone;

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: 2 } });
  system = await startStandalone(testConfig({ kafkaBrokers: kafka.brokers, topic: TOPIC, partitions: 2, mysqlUrl: db.url, rateUserMax: 1e6, rateIpMax: 1e6 }), createLogger('test', 'silent'));
});
after(async () => {
  await system?.stop();
  await kafka?.stop();
  await db.drop();
});

describe('standalone over a Kafka broker', () => {
  test('every accepted send is a record in the topic, and comes back to pollers through it', async () => {
    const room = uniqueRoom('sak');
    const token = tokenFor('sak-user');
    const N = 12;
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${system.url}/v1/rooms/${room}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: `through the broker ${i}` }),
      });
      assert.equal(res.status, 202);
    }
    const messages = await readRoom(system.url, room, { until: (read) => read.length >= N, timeoutMs: 30_000 });
    assert.deepEqual(
      messages.map((m) => m.content),
      Array.from({ length: N }, (_, i) => `through the broker ${i}`),
    );
    const admin = new Kafka({ brokers: kafka.brokers, clientId: 'standalone-kafka-test', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(TOPIC);
      const records = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
      assert.equal(records, N, 'the sends went through the broker');
    } finally {
      await admin.disconnect();
    }
  });
});
