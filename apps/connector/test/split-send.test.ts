import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { createModeration } from '@danmaku/moderation';
import { openStore, type RedisStore } from '@danmaku/store';
import { startKafka, testConfig, tokenFor, uniqueRoom, type TestKafka } from '@danmaku/testkit';
import { connectSocket, spawnConnector, type ConnectorProcess } from './helpers.js';

type Ack = { ok: true; id: string } | { ok: false; error: { code: string; message: string } };

/**
 * A connector running as its own process (split mode, Kafka bus) takes socket sends through the
 * same checks as the HTTP front: here the per-user rate limit and a moderator's mute.
 */
describe('socket sends on a split connector', () => {
  const config = testConfig({ cluster: uniqueRoom('split') });
  let kafka: TestKafka;
  let connector: ConnectorProcess;
  let store: RedisStore;
  let closeStore: () => Promise<void>;
  const sockets: Socket[] = [];

  before(async () => {
    kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
    connector = await spawnConnector({
      KAFKA_BROKERS: kafka.brokers.join(','),
      DANMAKU_CLUSTER: config.cluster,
      DANMAKU_RATE_USER_MAX: '2',
      DANMAKU_RATE_WINDOW_MS: '60000',
    });
    ({ store, close: closeStore } = await openStore(config, 'test'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await connector.proc.kill();
    await kafka.stop();
    await closeStore();
  });

  const connect = (user: string): Promise<Socket> => connectSocket(connector.url, tokenFor(user), sockets);

  const send = async (socket: Socket, roomId: string, content: string): Promise<Ack> =>
    (await socket.timeout(10_000).emitWithAck('send', { roomId, type: 'comment', content })) as Ack;

  it('applies the per-user rate limit', async () => {
    const roomId = uniqueRoom('rate');
    const socket = await connect(uniqueRoom('fast-user'));
    assert.equal((await send(socket, roomId, 'one')).ok, true);
    assert.equal((await send(socket, roomId, 'two')).ok, true);
    const third = await send(socket, roomId, 'three');
    assert.equal(third.ok, false);
    assert.equal(!third.ok && third.error.code, 'rate_limited');
    assert.ok(socket.connected, 'a refused send keeps the socket');
  });

  it('refuses a muted user', async () => {
    const roomId = uniqueRoom('mute');
    const user = uniqueRoom('muted-user');
    const moderation = createModeration({ ...config, store, logger: createLogger('test', 'silent') });
    await moderation.mute(roomId, user, 60);
    moderation.stop();
    const socket = await connect(user);
    const ack = await send(socket, roomId, 'let me speak');
    assert.equal(ack.ok, false);
    assert.equal(!ack.ok && ack.error.code, 'muted');
  });
});
