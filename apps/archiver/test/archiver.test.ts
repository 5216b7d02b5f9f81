import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Archive } from '@danmaku/archive';
import { KafkaBus, MemoryBus } from '@danmaku/bus';
import { newMessageId, partitionFor, streamKey, type UnsequencedMessage } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import { freePort, spawnTs, startKafka, testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { startArchiver } from '@danmaku/archiver';
import { testDatabase } from '../../../packages/archive/test/db.js';

const logger = createLogger('test', 'silent');
const TOPIC = 'danmaku.messages';

function message(roomId: string, i: number, liveId: string | null): UnsequencedMessage {
  const ts = Date.now();
  return {
    id: newMessageId(ts) + i,
    roomId,
    type: i % 4 === 0 ? 'gift' : 'comment',
    ts,
    user: { id: `u${i % 7}`, name: 'U' },
    ...(i % 4 === 0 ? { gift: { giftId: 'rose', count: 1 } } : { content: `m${i}` }),
    ...(liveId ? { liveId, offsetMs: i * 10 } : {}),
  };
}

function records(messages: UnsequencedMessage[], partitions: number) {
  return messages.map((m) => {
    const key = streamKey(m.roomId, m.type);
    return { key, value: JSON.stringify(m), partition: partitionFor(key, partitions) };
  });
}

/**
 * A TCP proxy in front of MariaDB that can be cut (dropping its connections and every new one,
 * counted) and restored: "MySQL is down" for this test only, without touching the shared server.
 */
async function mysqlProxy(target: URL): Promise<{ url: string; cut(): void; restore(): void; refused(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let down = false;
  let refused = 0;
  const server: Server = createServer((client) => {
    if (down) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 3306), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = new URL(target.toString());
  url.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const cut = (): void => {
    down = true;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: url.toString(),
    cut,
    restore: () => void (down = false),
    refused: () => refused,
    close: async () => {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('archiver over the memory bus (standalone)', () => {
  const db = testDatabase('archiver');
  after(() => db.drop());

  test('archives every message once, even when the bus redelivers and MySQL goes away for a while', async () => {
    const proxy = await mysqlProxy(new URL(db.url));
    // Short timeouts: mysql2 keeps a query's timer alive after its connection was cut.
    const archive = new Archive(proxy.url, { queryTimeoutMs: 1000, insertTimeoutMs: 2000 });
    await archive.ready();
    const bus = new MemoryBus({ partitions: 4, logger });
    const consumer = await startArchiver({ bus, archive, topic: TOPIC, logger, batchSize: 50 });
    const room = uniqueRoom('arch');
    const live = `lv-${room}`;

    const first = Array.from({ length: 300 }, (_, i) => message(room, i, live));
    await bus.produce(TOPIC, records(first, 4));
    await waitFor('first batch archived', async () => (await archive.countLive(live).catch(() => 0)) === 300);

    // MySQL away: batches fail and stay on the bus (uncommitted), none is dropped.
    proxy.cut();
    const second = Array.from({ length: 200 }, (_, i) => message(room, 300 + i, live));
    await bus.produce(TOPIC, records(second, 4));
    // The archiver has tried MySQL while it was away (a connection the proxy refused).
    await waitFor('the archiver to try MySQL while it is away', () => proxy.refused() > 0, 15_000);
    assert.ok((await consumer.lag()) > 0, 'undelivered batches wait on the bus');
    proxy.restore();
    await waitFor('the rest archived after MySQL came back', async () => (await consumer.lag()) === 0, 20_000);

    // A redelivery (e.g. a crash before commit) of already archived messages adds nothing.
    await bus.produce(TOPIC, records(first.slice(0, 100), 4));
    await waitFor('redelivery consumed', async () => (await consumer.lag()) === 0);
    assert.equal(await archive.countLive(live), 500);
    const window = await archive.readWindow(live, 0, 1_000_000);
    assert.equal(window.length, 500);
    assert.deepEqual(
      window.map((r) => r.offsetMs),
      [...first, ...second].map((m) => m.offsetMs),
    );

    await consumer.stop();
    await bus.close();
    await archive.close();
    await proxy.close();
  });
});

describe('archiver as its own process (Kafka)', () => {
  const db = testDatabase('archiverk');
  after(() => db.drop());

  test('apps/archiver/src/main.ts migrates, consumes its group and writes MySQL', async () => {
    const kafka = await startKafka({ topics: { [TOPIC]: 4 } });
    const config = testConfig();
    const port = await freePort();
    const child = spawnTs('apps/archiver/src/main.ts', {
      KAFKA_BROKERS: kafka.brokers.join(','),
      DANMAKU_PARTITIONS: '4',
      MYSQL_URL: db.url,
      ARCHIVER_PORT: String(port),
      LOG_LEVEL: 'info',
      REDIS_URL: config.redisUrl,
    });
    try {
      await child.waitForOutput(/archiver consuming/, 30_000);
      const bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'test', partitions: 4 });
      const room = uniqueRoom('archk');
      const live = `lv-${room}`;
      const batch = Array.from({ length: 120 }, (_, i) => message(room, i, live));
      await bus.produce(TOPIC, records(batch, 4));
      const archive = new Archive(db.url);
      await waitFor('messages archived by the archiver process', async () => (await archive.countLive(live).catch(() => 0)) === 120, 30_000);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 200);
      await archive.close();
      await bus.close();
    } finally {
      await child.kill();
      await kafka.stop();
    }
  });
});
