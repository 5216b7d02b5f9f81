import type { Cluster, Redis } from 'ioredis';
import { isCluster } from './cluster.js';
import { slotOf } from './keys.js';
import { guard, waitReady } from './redis.js';

export type SignalHandler = (channel: string, message: string) => void;

export interface Subscription {
  close(): Promise<void>;
}

/**
 * Room signals: the pub/sub of the system ("room advanced", "node, pull these rooms", "deleted").
 * Fire and forget, like Centrifuge's Broker PUBLISH: a lost signal delays a message, never loses
 * it, because every listener also catches up from the store (and does so at once when its
 * subscription was re-established after a lost connection or a failover: `onResubscribed`).
 */
export interface Signals {
  publish(channel: string, message: string): Promise<void>;
  /** Several channels at once: one pipeline on a single Redis, per-shard on a cluster. */
  publishMany(batch: readonly (readonly [channel: string, message: string])[]): Promise<void>;
  /**
   * `onLost`: the subscription may be missing signals from now until the next `onResubscribed`
   * (a listener that serves from memory stops trusting it in between).
   */
  subscribe(channels: readonly string[], handler: SignalHandler, onResubscribed?: () => void, onLost?: () => void): Promise<Subscription>;
}

/**
 * Signals over Redis. A single instance uses PUBLISH/SUBSCRIBE; a cluster uses sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE, Redis 7): a classic PUBLISH on a cluster is copied to every node, a shard
 * channel stays on the shard of its hash tag. Each subscribe gets a connection of its own.
 */
export class RedisSignals implements Signals {
  private readonly sharded: boolean;

  constructor(
    private readonly publisher: Redis | Cluster,
    private readonly name = 'signals',
  ) {
    this.sharded = isCluster(publisher);
  }

  async publish(channel: string, message: string): Promise<void> {
    await guard(() => (this.sharded ? this.publisher.spublish(channel, message) : this.publisher.publish(channel, message)));
  }

  async publishMany(batch: readonly (readonly [string, string])[]): Promise<void> {
    if (batch.length === 0) return;
    if (batch.length === 1) return this.publish(batch[0]?.[0] as string, batch[0]?.[1] as string);
    if (this.sharded) {
      // One command per channel, all in flight: each goes to its shard's primary.
      await guard(() => Promise.all(batch.map(([channel, message]) => this.publisher.spublish(channel, message))));
      return;
    }
    await guard(async () => {
      const pipeline = (this.publisher as Redis).pipeline();
      for (const [channel, message] of batch) pipeline.publish(channel, message);
      const replies = (await pipeline.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
    });
  }

  async subscribe(list: readonly string[], handler: SignalHandler, onResubscribed?: () => void, onLost?: () => void): Promise<Subscription> {
    const channels = [...list];
    if (isCluster(this.publisher)) {
      // Not auto-pipelined: SSUBSCRIBE is not on ioredis' list of commands kept out of pipelines.
      const sub = this.publisher.duplicate(undefined, {
        enableAutoPipelining: false,
        shardedSubscribers: true,
        redisOptions: { ...this.publisher.options.redisOptions, connectionName: `${this.name}-ssub` },
      });
      sub.on('error', () => undefined);
      sub.on('smessage', (channel: string, message: string) => handler(channel, message));
      await waitClusterReady(sub).catch((err: unknown) => {
        sub.disconnect();
        throw err;
      });
      // SSUBSCRIBE takes channels of one slot only: one call per slot.
      const bySlot = new Map<number, string[]>();
      for (const channel of channels) {
        const slot = slotOf(channel);
        bySlot.set(slot, [...(bySlot.get(slot) ?? []), channel]);
      }
      await Promise.all([...bySlot.values()].map((group) => sub.ssubscribe(...group)));
      let initial = true;
      // After the first start, every subscribersReady is a re-subscription (a node died, the slot
      // map moved): the listener may have missed signals and catches up from the store.
      sub.on('subscribersReady', () => {
        if (initial) return;
        onResubscribed?.();
      });
      setTimeout(() => (initial = false), 0);
      sub.on('-subscriber', () => onLost?.());
      sub.on('-node', () => {
        onLost?.();
        onResubscribed?.();
      });
      return {
        async close() {
          sub.disconnect();
        },
      };
    }
    // A subscriber sends next to nothing: no auto-pipelining (the publisher's option would carry over).
    const sub = this.publisher.duplicate({ connectionName: `${this.name}-sub`, enableOfflineQueue: true, enableAutoPipelining: false });
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, message: string) => handler(channel, message));
    try {
      await waitReady(sub);
      await sub.subscribe(...channels);
    } catch (err) {
      // The caller gets no subscription to close: the connection must not outlive the failure.
      sub.disconnect();
      throw err;
    }
    // ioredis re-subscribes by itself after a reconnect, then emits ready again, before Redis has
    // answered the SUBSCRIBE: a PING behind it on the same connection says the channels are live,
    // so a catch-up read made after it cannot miss a signal.
    sub.on('ready', () => {
      if (!onResubscribed) return;
      sub.ping().then(onResubscribed, onResubscribed);
    });
    sub.on('close', () => onLost?.());
    return {
      async close() {
        sub.disconnect();
      },
    };
  }
}

export async function waitClusterReady(cluster: Cluster, timeoutMs = 10_000): Promise<void> {
  if (cluster.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cluster.off('ready', onReady);
      reject(new Error(`Redis Cluster not ready after ${timeoutMs} ms (status ${cluster.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    cluster.once('ready', onReady);
  });
}
