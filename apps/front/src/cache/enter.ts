import { LRUCache } from 'lru-cache';
import type { Principal } from '@danmaku/auth';
import type { SendPipeline } from '@danmaku/send';
import { counter, type Logger } from '@danmaku/observability';
import type { Switchboard } from '@danmaku/switches';
import type { RoomCache } from './room-cache.js';

const enters = counter<'result'>({ name: 'danmaku_enter_messages_total', help: '"X joined" messages, published or dropped (big room, switch, repeat)', labelNames: ['result'] });

/**
 * "X joined" messages. They are worth a line on screen in a small room and pure noise in a big
 * one, so big rooms (online count or cache) drop them, the enterMessages switch stops them
 * everywhere, and a viewer re-entering within the online TTL (a reload, a heartbeat) is announced once.
 */
export class EnterAnnouncer {
  private readonly recent: LRUCache<string, true>;

  constructor(
    private readonly send: SendPipeline,
    private readonly switches: Switchboard,
    private readonly cache: RoomCache,
    private readonly bigOnline: number,
    onlineTtlMs: number,
    private readonly logger: Logger,
  ) {
    this.recent = new LRUCache<string, true>({ max: 100_000, ttl: onlineTtlMs });
  }

  /** Fire and forget: a failed announcement must not fail the enter itself. */
  announce(roomId: string, principal: Principal, online: number): void {
    if (!this.switches.get().enterMessages) {
      enters.inc({ result: 'switched_off' });
      return;
    }
    if (online >= this.bigOnline || this.cache.isBig(roomId)) {
      enters.inc({ result: 'big_room' });
      return;
    }
    const key = `${roomId}\0${principal.id}`;
    if (this.recent.has(key)) {
      enters.inc({ result: 'repeat' });
      return;
    }
    this.recent.set(key, true);
    this.send.enter(roomId, principal).then(
      () => enters.inc({ result: 'published' }),
      (err: unknown) => {
        this.recent.delete(key);
        enters.inc({ result: 'error' });
        this.logger.debug({ err, roomId }, 'enter message not published');
      },
    );
  }
}
