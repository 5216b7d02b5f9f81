import { encodeCursor, type Cursor, type MessageType } from '@danmaku/protocol';
import { counter, gauge, histogram, type Logger } from '@danmaku/observability';
import type { StoredMessage } from '@danmaku/push';
import { SAMPLED_TYPES, keptBySample } from '@danmaku/switches';
import type { MessageLog, ReadResult } from '@danmaku/store';
import type { RoomEvent } from './transport.js';

const packets = counter({ name: 'danmaku_connector_packets_total', help: '`messages` packets emitted to a room group (each encoded once)' });
const deliveries = counter({ name: 'danmaku_connector_deliveries_total', help: 'Messages delivered, counted once per socket that received them' });
const pulls = counter<'reason'>({ name: 'danmaku_connector_pulls_total', help: 'Pulls of a room from Redis, by what caused them', labelNames: ['reason'] });
const pullErrors = counter({ name: 'danmaku_connector_pull_errors_total', help: 'Pulls that failed (retried by the next notify or sweep)' });
const emitDelay = histogram({
  name: 'danmaku_connector_emit_delay_seconds',
  help: 'Message ts (front receive) -> emitted by this connector, for the oldest message of each packet',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5],
});
const sampledOut = counter({ name: 'danmaku_connector_sampled_out_total', help: 'Messages a big room\'s packets left out (the bigRoomSampleRatio switch), counted once per packet' });
const budgetSampledOut = counter({ name: 'danmaku_connector_budget_sampled_out_total', help: 'Messages left out of packets because their room was over DANMAKU_ROOM_DELIVERY_BUDGET on this connector, counted once per packet' });
const throttledRooms = gauge({ name: 'danmaku_connector_throttled_rooms', help: 'Rooms this connector samples by itself, being over DANMAKU_ROOM_DELIVERY_BUDGET' });
const broadcastsIn = counter<'result'>({ name: 'danmaku_connector_broadcasts_total', help: 'Broadcast payloads received from the pusher', labelNames: ['result'] });

/** A throttled room aims at this share of the budget, so it stays under it while its rate wobbles (the capacity model reads it). */
export const BUDGET_TARGET = 0.9;
/** A throttled room goes back to everything once it wants less than this share of the budget (hysteresis). */
const BUDGET_RELEASE = 0.7;
/** How long a room's demand is counted before its share is set again. */
const BUDGET_WINDOW_MS = 1000;

/** Most messages one pull takes per stream; a longer backlog is pulled again at once. */
const PULL_LIMIT = 500;

export type PullReason = 'notify' | 'sweep' | 'gap' | 'backlog';

/** Sockets of a room that asked for the same set of types: they share one encoded packet. */
interface Group {
  name: string;
  types: MessageType[];
  typeSet: Set<MessageType>;
  sockets: number;
}

interface Room {
  id: string;
  groups: Map<string, Group>;
  sockets: number;
  /** Highest seq per type taken into `pending` (or emitted): pulls read after it. */
  taken: Map<MessageType, number>;
  /** Highest seq per type emitted to the room: a joining socket's catch-up ends here. */
  emitted: Map<MessageType, number>;
  /** Newest ts per type of what was taken (from the room's start here): tells a restarted stream from a lagging read. */
  takenTs: Map<MessageType, number>;
  /** A stream restarted below `taken` (its keys expired): the next packet says skipped, so clients rewind. */
  restarted: boolean;
  openedAt: number;
  pending: StoredMessage[];
  pulling: boolean;
  pullAgain: boolean;
  notifyTimer: NodeJS.Timeout | null;
  flushTimer: NodeJS.Timeout | null;
  lastFlushAt: number;
  lastPullAt: number;
  closed: boolean;
  /** Deliveries the room's packets would have cost unsampled (messages x sockets) since budgetFrom. */
  demand: number;
  budgetFrom: number;
  /** The share of comments this connector keeps on its own (1: all); below 1 while over budget. */
  budgetRatio: number;
}

export interface RoomHubOptions {
  /** Hands one event to every transport's sessions in a group; returns how many it reached. */
  deliver: (group: string, event: RoomEvent) => number;
  store: MessageLog;
  logger: Logger;
  mergeMs: number;
  /** The merge window of a room with at least bigRoomSockets sockets here. */
  bigMergeMs: number;
  bigRoomSockets: number;
  notifyDelayMs: number;
  sweepMs: number;
  /** A join whose cursor points at messages older than this catches up only on newer ones. */
  catchUpMaxAgeMs: number;
  /** Rooms whose socket count changed (the registry tells the pusher). */
  onMembership: (roomId: string, sockets: number) => void;
  /**
   * Share of comments (SAMPLED_TYPES) a big room's packets keep, read at every flush: the
   * bigRoomSampleRatio switch, which thins a big room's polls the same way (by seq, so a viewer
   * who polls and one who holds a connection see the same subset). Default: all.
   */
  sampleRatio?: () => number;
  /** Deliveries per second one room may cost here before its comments are sampled (0: no limit). */
  deliveryBudget?: number;
}

export interface JoinResult {
  group: string;
  catchUp: StoredMessage[];
  cursor: string;
  skipped: boolean;
}

export const groupKey = (types: readonly MessageType[]): string => [...types].sort().join(',');

function parseStored(json: readonly string[]): StoredMessage[] {
  const out: StoredMessage[] = new Array<StoredMessage>(json.length);
  for (let i = 0; i < json.length; i++) out[i] = JSON.parse(json[i] as string) as StoredMessage;
  return out;
}

/**
 * The rooms of one connector: which sockets sit in which room (one group per (room, set of
 * types), whatever transport its sockets use), what was sent to each room, and the pull / merge / emit cycle. It knows
 * nothing of a room's business: the join check happens before.
 */
export class RoomHub {
  readonly rooms = new Map<string, Room>();
  /** When a packet last went out in any room: how long this connector's viewers have been idle. */
  lastEmitAt = 0;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly options: RoomHubOptions) {
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(100, Math.floor(options.sweepMs / 4)));
    this.sweepTimer.unref();
  }

  /**
   * Works out what a joining socket missed and where the room's live stream picks up, so that
   * catch-up + live = every message once. The read runs outside any lock: when the room moved
   * past what the read saw, it reads again from there.
   */
  async prepareJoin(roomId: string, types: MessageType[], cursor: Cursor | null, catchUpLimit: number): Promise<JoinResult & { commit: () => void }> {
    const from = new Map<MessageType, number | null>(types.map((t) => [t, cursor?.[t] ?? null]));
    const kept: StoredMessage[] = [];
    let skipped = false;
    for (let attempt = 0; ; attempt++) {
      const results = await this.options.store.readMany(
        roomId,
        types.map((type) => ({ type, cursorSeq: from.get(type) ?? null })),
        cursor ? catchUpLimit : Math.min(catchUpLimit, 50),
        cursor ? Date.now() - this.options.catchUpMaxAgeMs : 0,
      );
      // From here to commit() everything is synchronous: no emit can slip in between.
      const room = this.rooms.get(roomId);
      let behind = false;
      for (const type of types) {
        const result = results.get(type) as ReadResult;
        skipped ||= result.skipped;
        const emitted = room?.emitted.get(type);
        const messages = parseStored(result.messages);
        if (emitted === undefined) {
          for (const m of messages) kept.push(m);
        } else {
          for (const m of messages) if (m.seq <= emitted) kept.push(m);
          if (result.cursorSeq < emitted) {
            behind = true;
            from.set(type, result.cursorSeq);
          }
        }
      }
      if (behind && attempt < 5) continue;
      const startAt = new Map<MessageType, number>();
      for (const type of types) startAt.set(type, (results.get(type) as ReadResult).cursorSeq);
      const key = groupKey(types);
      const name = `${roomId}\n${key}`;
      const cursorOf = (): string => {
        const r = this.rooms.get(roomId);
        const c: Cursor = {};
        for (const type of types) c[type] = r?.emitted.get(type) ?? startAt.get(type) ?? 0;
        return encodeCursor(c);
      };
      return {
        group: name,
        catchUp: kept,
        skipped,
        cursor: cursorOf(),
        commit: () => {
          const r = this.ensureRoom(roomId);
          for (const type of types) {
            if (!r.taken.has(type)) {
              // The first socket of a type: the room's stream starts where its read ended.
              const at = startAt.get(type) ?? 0;
              r.taken.set(type, at);
              r.emitted.set(type, at);
            }
          }
          let group = r.groups.get(key);
          if (!group) {
            group = { name, types: [...types], typeSet: new Set(types), sockets: 0 };
            r.groups.set(key, group);
          }
          group.sockets++;
          r.sockets++;
          this.options.onMembership(roomId, r.sockets);
        },
      };
    }
  }

  /** A socket left a group (leave, disconnect). */
  release(roomId: string, group: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const key = group.slice(group.indexOf('\n') + 1);
    const g = room.groups.get(key);
    if (g) {
      g.sockets--;
      if (g.sockets <= 0) room.groups.delete(key);
    }
    room.sockets = Math.max(0, room.sockets - 1);
    this.options.onMembership(roomId, room.sockets);
    if (room.sockets === 0) this.closeRoom(room);
  }

  /** The pusher says the room has news: pull once after a short wait (notifies close together share it). */
  notify(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room || room.notifyTimer) return;
    room.notifyTimer = setTimeout(() => {
      room.notifyTimer = null;
      void this.pull(room, 'notify');
    }, this.options.notifyDelayMs);
  }

  /** The pusher read a big room once and sent the payload: take it if it continues what we have. */
  broadcast(roomId: string, type: MessageType, messages: StoredMessage[]): void {
    const room = this.rooms.get(roomId);
    const taken = room?.taken.get(type);
    if (!room || taken === undefined) {
      broadcastsIn.inc({ result: 'not_here' });
      return;
    }
    let cur = taken;
    let i = 0;
    while (i < messages.length && (messages[i] as StoredMessage).seq <= cur) i++;
    if (i === messages.length) {
      broadcastsIn.inc({ result: 'stale' });
      return;
    }
    if ((messages[i] as StoredMessage).seq > cur + 1) {
      // Something between is missing (a payload lost, or a deleted message): Redis knows.
      broadcastsIn.inc({ result: 'gap' });
      void this.pull(room, 'gap');
      return;
    }
    broadcastsIn.inc({ result: 'taken' });
    let newestTs = room.takenTs.get(type) ?? room.openedAt;
    for (; i < messages.length; i++) {
      const m = messages[i] as StoredMessage;
      if (m.seq <= cur) continue;
      room.pending.push(m);
      cur = m.seq;
      if (m.ts > newestTs) newestTs = m.ts;
    }
    room.taken.set(type, cur);
    room.takenTs.set(type, newestTs);
    this.scheduleFlush(room);
  }

  /** A message was deleted: drop it if not sent yet, and tell the sockets that may show it. */
  deleted(roomId: string, type: MessageType, ids: string[]): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const gone = new Set(ids);
    room.pending = room.pending.filter((m) => !gone.has(m.id));
    for (const group of room.groups.values()) {
      if (group.typeSet.has(type)) this.options.deliver(group.name, { kind: 'deleted', roomId, type, ids });
    }
  }

  async pull(room: Room, reason: PullReason): Promise<void> {
    if (room.closed) return;
    if (room.pulling) {
      room.pullAgain = true;
      return;
    }
    room.pulling = true;
    room.lastPullAt = Date.now();
    pulls.inc({ reason });
    let again = false;
    try {
      const types = [...room.taken.keys()];
      const results = await this.options.store.readMany(
        room.id,
        types.map((type) => ({ type, cursorSeq: room.taken.get(type) ?? null })),
        PULL_LIMIT,
      );
      if (room.closed) return;
      for (const type of types) {
        const result = results.get(type);
        if (!result || result.messages.length === 0) continue;
        let cur = room.taken.get(type) ?? 0;
        let newestTs = room.takenTs.get(type) ?? room.openedAt;
        let messages = parseStored(result.messages);
        if (result.newestSeq < cur) {
          // The stream is behind what this room took: its keys expired after a quiet spell (or the
          // store was reset) and it numbers from 1 again. What is newer than anything taken is new;
          // a lagging replica's messages are not, and are left alone.
          messages = messages.filter((m) => m.ts > newestTs);
          if (messages.length === 0) continue;
          cur = 0;
          room.restarted = true;
        }
        // A broadcast may have moved `taken` while the read was in flight.
        for (const m of messages) {
          if (m.seq <= cur) continue;
          room.pending.push(m);
          cur = m.seq;
          if (m.ts > newestTs) newestTs = m.ts;
        }
        room.taken.set(type, cur);
        room.takenTs.set(type, newestTs);
        if (result.messages.length >= PULL_LIMIT) again = true;
      }
      this.scheduleFlush(room);
    } catch (err) {
      pullErrors.inc();
      this.options.logger.warn({ err, roomId: room.id }, 'pull failed; the sweep retries');
    } finally {
      room.pulling = false;
      if (room.pullAgain || again) {
        room.pullAgain = false;
        setImmediate(() => void this.pull(room, 'backlog'));
      }
    }
  }

  private scheduleFlush(room: Room): void {
    if (room.flushTimer || room.pending.length === 0) return;
    // The first packet after a quiet spell goes at once; later ones wait out the merge window,
    // which is longer for big rooms: a packet costs one write per socket.
    const window = room.sockets >= this.options.bigRoomSockets ? this.options.bigMergeMs : this.options.mergeMs;
    const wait = Math.max(0, room.lastFlushAt + window - Date.now());
    room.flushTimer = setTimeout(() => this.flush(room), wait);
  }

  private flush(room: Room): void {
    room.flushTimer = null;
    if (room.closed || room.pending.length === 0) return;
    room.lastFlushAt = Date.now();
    this.lastEmitAt = room.lastFlushAt;
    let messages = room.pending;
    room.pending = [];
    let oldest = Infinity;
    for (const m of messages) if (m.ts < oldest) oldest = m.ts;
    emitDelay.observe(Math.max(0, room.lastFlushAt - oldest) / 1000);
    // The cursors move past what was left out: a thinned packet is the whole window, said so.
    for (const [type, seq] of room.taken) room.emitted.set(type, seq);
    // After a restarted stream the cursor goes back: skipped tells clients to follow it.
    let skipped = room.restarted;
    room.restarted = false;
    this.measureDemand(room, messages.length * room.sockets, room.lastFlushAt);
    // The operators' switch, when set, overrides the room's own budget.
    const manual = room.sockets >= this.options.bigRoomSockets && this.options.sampleRatio ? this.options.sampleRatio() : 1;
    const ratio = manual < 1 ? manual : room.budgetRatio;
    if (ratio < 1) {
      const kept = messages.filter((m) => !SAMPLED_TYPES.has(m.type) || keptBySample(m.seq, ratio));
      skipped ||= kept.length < messages.length;
      (manual < 1 ? sampledOut : budgetSampledOut).inc(messages.length - kept.length);
      messages = kept;
    }
    for (const group of room.groups.values()) {
      const out = group.typeSet.size >= room.taken.size ? messages : messages.filter((m) => group.typeSet.has(m.type));
      if (out.length === 0) continue;
      const cursor: Cursor = {};
      for (const type of group.types) cursor[type] = room.emitted.get(type) ?? 0;
      // One encoding per group and transport, one write per socket.
      const reached = this.options.deliver(group.name, { kind: 'messages', roomId: room.id, messages: out, cursor: encodeCursor(cursor), ...(skipped ? { skipped } : {}) });
      packets.inc();
      deliveries.inc(out.length * reached);
    }
  }

  /**
   * Counts what the room's packets would cost unsampled and, once a window, sets the share of
   * comments it keeps: over the budget, the share that brings it to BUDGET_TARGET of it (the same
   * rule as the bigRoomSampleRatio switch: by seq, gifts and notices whole); back to all once it
   * wants less than BUDGET_RELEASE of the budget, so a room near the line does not flap.
   */
  private measureDemand(room: Room, deliveries: number, now: number): void {
    const budget = this.options.deliveryBudget ?? 0;
    if (budget <= 0) return;
    room.demand += deliveries;
    const elapsed = now - room.budgetFrom;
    if (elapsed < BUDGET_WINDOW_MS) return;
    const rate = (room.demand * 1000) / elapsed;
    room.demand = 0;
    room.budgetFrom = now;
    const throttled = room.budgetRatio < 1;
    if (rate > budget || (throttled && rate >= budget * BUDGET_RELEASE)) {
      // Never quite 1 while throttled: the room stays marked until it is well under.
      const ratio = Math.min(0.999, (budget * BUDGET_TARGET) / rate);
      if (!throttled) {
        throttledRooms.inc();
        this.options.logger.info({ roomId: room.id, deliveriesPerSecond: Math.round(rate), budget, ratio }, 'room over its delivery budget: sampling its comments');
      }
      room.budgetRatio = ratio;
    } else if (throttled) {
      throttledRooms.dec();
      room.budgetRatio = 1;
      this.options.logger.info({ roomId: room.id, deliveriesPerSecond: Math.round(rate), budget }, 'room back under its delivery budget');
    }
  }

  private ensureRoom(roomId: string): Room {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = {
        id: roomId,
        groups: new Map(),
        sockets: 0,
        taken: new Map(),
        emitted: new Map(),
        takenTs: new Map(),
        restarted: false,
        openedAt: Date.now(),
        pending: [],
        pulling: false,
        pullAgain: false,
        notifyTimer: null,
        flushTimer: null,
        lastFlushAt: 0,
        lastPullAt: Date.now(),
        closed: false,
        demand: 0,
        budgetFrom: Date.now(),
        budgetRatio: 1,
      };
      this.rooms.set(roomId, room);
    }
    return room;
  }

  private closeRoom(room: Room): void {
    room.closed = true;
    if (room.budgetRatio < 1) throttledRooms.dec();
    if (room.notifyTimer) clearTimeout(room.notifyTimer);
    if (room.flushTimer) clearTimeout(room.flushTimer);
    this.rooms.delete(room.id);
  }

  /** The slow timer: a room not pulled for sweepMs is pulled, so a lost notify only delays. */
  private sweep(): void {
    const now = Date.now();
    for (const room of this.rooms.values()) {
      if (now - room.lastPullAt >= this.options.sweepMs) void this.pull(room, 'sweep');
      // A throttled room that went quiet is released without waiting for its next packet.
      if (room.budgetRatio < 1) this.measureDemand(room, 0, now);
    }
  }

  get socketsInRooms(): number {
    let n = 0;
    for (const room of this.rooms.values()) n += room.sockets;
    return n;
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    for (const room of [...this.rooms.values()]) this.closeRoom(room);
  }
}
