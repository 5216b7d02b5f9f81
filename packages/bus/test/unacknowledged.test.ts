/**
 * What a produce left unwritten although kafkajs resolved it: the records of every partition its
 * answer does not name with success (kafkajs 2.2.4 drops a partition whose leader moved, during
 * its retries, to a broker that had already answered). Then, on a real broker, that an ordinary
 * send names every partition it wrote, so nothing written is sent twice.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type RecordMetadata } from 'kafkajs';
import { startKafka, type TestKafka } from '@danmaku/testkit';
import { unacknowledged } from '../src/kafka.js';

const meta = (topicName: string, partition: number, errorCode = 0): RecordMetadata => ({ topicName, partition, errorCode });

test('the records of partitions the answer leaves out, or names with an error, are the unwritten ones', () => {
  const sent = [
    { topic: 'a', messages: [{ partition: 0, value: 'a0' }, { partition: 1, value: 'a1' }, { partition: 1, value: 'a1b' }, { partition: 2, value: 'a2' }] },
    { topic: 'b', messages: [{ partition: 1, value: 'b1' }] },
  ];
  assert.deepEqual(unacknowledged(sent, [meta('a', 0), meta('a', 1), meta('a', 2), meta('b', 1)]), []);
  // Partition a:1 moved to a broker that had answered already: not in the answer at all.
  assert.deepEqual(unacknowledged(sent, [meta('a', 0), meta('a', 2), meta('b', 1)]), [{ topic: 'a', messages: [{ partition: 1, value: 'a1' }, { partition: 1, value: 'a1b' }] }]);
  // The same partition number in another topic does not count for it; an error code is no write.
  assert.deepEqual(unacknowledged(sent, [meta('a', 0), meta('a', 1), meta('a', 2), meta('b', 1, 6)]), [{ topic: 'b', messages: [{ partition: 1, value: 'b1' }] }]);
  assert.deepEqual(unacknowledged(sent, [meta('b', 0), meta('b', 1)]), [sent[0]]);
});

let kafka: TestKafka;
before(async () => {
  kafka = await startKafka({ topics: { 'unacked.check': 4 } });
});
after(async () => {
  await kafka.stop();
});

test('a real broker names every partition a send wrote', { timeout: 60_000 }, async () => {
  const client = new Kafka({ clientId: 'unacked', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const producer = client.producer();
  await producer.connect();
  try {
    const topicMessages = [{ topic: 'unacked.check', messages: [0, 1, 2, 3, 1].map((partition, i) => ({ partition, value: `m${i}` })) }];
    const acked = await producer.sendBatch({ acks: -1, topicMessages });
    assert.deepEqual(unacknowledged(topicMessages, acked), []);
    assert.deepEqual(acked.map((r) => r.partition).sort(), [0, 1, 2, 3]);
  } finally {
    await producer.disconnect();
  }
});
