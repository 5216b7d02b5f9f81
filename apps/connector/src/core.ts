import { ApiError } from '@danmaku/model';
import { type Cursor, type KickedPacket, MAX_ROOMS_PER_SOCKET, type MessageType } from '@danmaku/protocol';
import { counter, gauge, type Logger } from '@danmaku/observability';
import { guard, roomKeys, type RedisStore } from '@danmaku/store';
import type { ConnectorSettings } from './settings.js';
import { RoomHub } from './rooms.js';
import type { RoomEvent, Session, Transport } from './transport.js';

/** No packet out for this long: a pause of the whole process costs no viewer a late message. */
const QUIET_MS = 3000;

const sessionsGauge = gauge<'transport'>({ name: 'danmaku_connector_sessions', help: 'Open connections, by transport', labelNames: ['transport'] });
const roomsGauge = gauge({ name: 'danmaku_connector_rooms', help: 'Rooms with at least one socket on this node' });
const joins = counter<'result'>({ name: 'danmaku_connector_joins_total', help: 'Room joins, by result', labelNames: ['result'] });
const moved = counter<'transport'>({ name: 'danmaku_connector_moved_total', help: 'Connections closed by a drain (SIGTERM), told to move first where the protocol can', labelNames: ['transport'] });
const kicks = counter<'transport'>({ name: 'danmaku_connector_kicks_total', help: 'Sessions taken out of a room by a ban or a kick, by transport', labelNames: ['transport'] });
export const drops = counter<'reason' | 'transport'>({
  name: 'danmaku_connector_dropped_sockets_total',
  help: 'Connections the server closed, by reason and transport',
  labelNames: ['reason', 'transport'],
});

export interface CoreOptions {
  config: ConnectorSettings;
  logger: Logger;
  store: RedisStore;
  /** Rooms whose socket count changed (the registry tells the pusher). */
  onMembership: (roomId: string, sockets: number) => void;
  /** Likes of a room for the periodic room event; the likes counter lives elsewhere. */
  roomLikes?: (roomId: string) => Promise<number>;
  /** The live state of a room, read when a live starts or ends. */
  roomLive?: (roomId: string) => Promise<{ liveId: string; startedAt: number } | null>;
  roomInfoMs?: number;
  /** Share of comments a big room's packets keep (the bigRoomSampleRatio switch); default all. */
  sampleRatio?: () => number;
}

/**
 * What every connection shares, whatever its transport: room joins (the business check, catch-up
 * then membership), leaves, presence, periodic room info, live start/end, and dropping slow
 * consumers. Transports register their sessions here and receive merged events through deliver().
 */
export class ConnectorCore {
  readonly hub: RoomHub;
  readonly sessions = new Set<Session>();
  private readonly transports: Transport[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** Rooms a session is joining (between the join's first await and its commit): they hold a slot already. */
  private readonly joining = new WeakMap<Session, Set<string>>();
  /** Most sessions open at once since the last collection (see reclaim()). */
  private peakSessions = 0;
  /** Sessions opened since the last collection, and whether any opened since the last tick (see reclaim()). */
  private openedSinceGc = 0;
  private openedThisTick = false;
  /** SIGTERM: no new joins; the open sessions are being moved away. */
  draining = false;

  constructor(private readonly options: CoreOptions) {
    const { config } = options;
    this.hub = new RoomHub({
      deliver: (group, event) => this.deliver(group, event),
      store: options.store,
      logger: options.logger,
      mergeMs: config.pushMergeMs,
      bigMergeMs: config.pushBigMergeMs,
      bigRoomSockets: config.pushBigRoom,
      notifyDelayMs: config.pushNotifyDelayMs,
      sweepMs: config.pushSweepMs,
      catchUpMaxAgeMs: config.catchUpMaxAgeMs,
      deliveryBudget: config.roomDeliveryBudget,
      onMembership: options.onMembership,
      ...(options.sampleRatio ? { sampleRatio: options.sampleRatio } : {}),
    });
    this.every(1000, () => this.dropSlowConsumers());
    this.every(options.roomInfoMs ?? config.roomInfoMs, () => this.roomInfo());
    // Presence refresh, so long-connected viewers stay "online".
    this.every(Math.max(1000, Math.floor(config.onlineTtlMs / 3)), () => {
      for (const session of this.sessions) {
        if (!session.principal) continue;
        for (const roomId of session.rooms.keys()) void options.store.enter(roomId, session.principal).catch(() => undefined);
      }
    });
  }

  addTransport(transport: Transport): void {
    this.transports.push(transport);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  deliver(group: string, event: RoomEvent): number {
    let reached = 0;
    for (const transport of this.transports) reached += transport.deliver(group, event);
    return reached;
  }

  opened(session: Session): void {
    this.sessions.add(session);
    if (this.sessions.size > this.peakSessions) this.peakSessions = this.sessions.size;
    this.openedSinceGc++;
    this.openedThisTick = true;
    sessionsGauge.inc({ transport: session.transport });
  }

  /** A session closed: it leaves every room. Safe to call twice. */
  closed(session: Session): void {
    if (!this.sessions.delete(session)) return;
    sessionsGauge.dec({ transport: session.transport });
    for (const [roomId, group] of session.rooms) {
      session.leaveGroup(group);
      this.hub.release(roomId, group);
      if (session.principal) void this.options.store.leave(roomId, session.principal.id).catch(() => undefined);
    }
    session.rooms.clear();
  }

  /**
   * Joins a room (the business module's room-entry check first). Returns the cursor and whether
   * the catch-up left messages out, or throws an ApiError; returns null when the session closed
   * meanwhile.
   */
  async join(session: Session, roomId: string, types: MessageType[], cursor: Cursor | null): Promise<{ cursor: string; skipped: boolean } | null> {
    const { store } = this.options;
    // Counted and reserved before any await: joins sent without waiting for their acks would all
    // pass a check that only looks at finished joins.
    let joining = this.joining.get(session);
    if (!joining) this.joining.set(session, (joining = new Set()));
    const isNew = !session.rooms.has(roomId) && !joining.has(roomId);
    if (isNew && session.rooms.size + joining.size >= MAX_ROOMS_PER_SOCKET) {
      joins.inc({ result: 'refused' });
      throw new ApiError(409, 'too_many_rooms', `One connection may sit in at most ${MAX_ROOMS_PER_SOCKET} rooms; leave one first.`);
    }
    if (this.draining) throw new ApiError(503, 'draining', 'This connector is shutting down; connect to another one (ask GET /v1/route).', 1);
    if (isNew) joining.add(roomId);
    try {
      if (session.principal && (await store.isBanned(roomId, session.principal.id))) {
        throw new ApiError(403, 'banned', 'You are banned from this room.');
      }
      const prepared = await this.hub.prepareJoin(roomId, types, cursor, store.retention);
      if (!session.isOpen() || !this.sessions.has(session)) return null;
      // Synchronous from here: catch-up, then membership, so nothing falls between them.
      if (prepared.catchUp.length > 0 || prepared.skipped) session.catchUp(roomId, prepared.catchUp, prepared.cursor, prepared.skipped);
      prepared.commit();
      // A join again (other types, or after a reconnect of the app): the old membership goes
      // after the new one is in, so the room never empties (and forgets its stream) in between.
      const previous = session.rooms.get(roomId);
      if (previous && previous !== prepared.group) session.leaveGroup(previous);
      if (previous) this.hub.release(roomId, previous);
      session.enterGroup(prepared.group);
      session.rooms.set(roomId, prepared.group);
      joins.inc({ result: 'ok' });
      if (session.principal) void store.enter(roomId, session.principal).catch(() => undefined);
      return { cursor: prepared.cursor, skipped: prepared.skipped };
    } catch (err) {
      joins.inc({ result: 'refused' });
      throw err;
    } finally {
      if (isNew) joining.delete(roomId);
      // Kept only while a join is in flight: an idle session holds no Set here.
      if (joining.size === 0) this.joining.delete(session);
    }
  }

  leave(session: Session, roomId: string): void {
    const group = session.rooms.get(roomId);
    if (!group) return;
    session.leaveGroup(group);
    this.hub.release(roomId, group);
    session.rooms.delete(roomId);
    if (session.principal) void this.options.store.leave(roomId, session.principal.id).catch(() => undefined);
  }

  /**
   * Moves every session away, spread evenly over `windowMs` so their reconnects (and catch-up
   * reads) reach the other connectors as a trickle, not a storm: session i of n goes at i/n of the
   * window. Resolves when the window is over.
   */
  async drain(windowMs: number): Promise<void> {
    this.draining = true;
    const started = Date.now();
    const queue = [...this.sessions];
    const n = queue.length;
    if (n === 0) return;
    let next = 0;
    const tickMs = n > 0 ? Math.max(5, Math.min(250, windowMs / n)) : windowMs;
    while (Date.now() - started < windowMs || next < n) {
      const due = windowMs > 0 ? Math.min(n, Math.floor(((Date.now() - started) / windowMs) * n) + 1) : n;
      for (; next < due; next++) {
        const session = queue[next] as Session;
        if (!this.sessions.has(session)) continue;
        moved.inc({ transport: session.transport });
        session.move();
        this.closed(session);
      }
      const left = windowMs - (Date.now() - started);
      if (next >= n && left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, next >= n ? left : Math.min(tickMs, Math.max(1, left))));
    }
    this.options.logger.info({ moved: n, ms: Date.now() - started }, 'drained');
  }

  /**
   * A moderator took a user out of a room (a ban or a kick, pub/sub): each of their sessions in
   * it here leaves the room and hears why. Returns how many sessions that was.
   */
  kick(packet: KickedPacket & { userId: string }): number {
    const { userId, ...notice } = packet;
    let n = 0;
    for (const session of this.sessions) {
      if (session.principal?.id !== userId || !session.rooms.has(notice.roomId)) continue;
      this.leave(session, notice.roomId);
      session.kicked(notice);
      kicks.inc({ transport: session.transport });
      n++;
    }
    return n;
  }

  /** A live started or ended in a room (pub/sub): every group of the room hears it. */
  liveChanged(roomId: string): void {
    const room = this.hub.rooms.get(roomId);
    if (!room || !this.options.roomLive) return;
    void this.options.roomLive(roomId).then(
      (live) => {
        for (const group of room.groups.values()) this.deliver(group.name, { kind: 'live', roomId, live });
      },
      (err: unknown) => this.options.logger.warn({ err, roomId }, 'could not read the live state'),
    );
  }

  /** Online count and likes for every room here, to every group of it. */
  private roomInfo(): void {
    const { store } = this.options;
    // The fronts aggregate likes into this counter (the store's roomKeys.likes).
    const roomLikes = this.options.roomLikes ?? (async (roomId: string) => Number((await guard(() => store.read.get(roomKeys.likes(roomId)))) ?? 0));
    for (const room of this.hub.rooms.values()) {
      const roomId = room.id;
      void Promise.all([store.online(roomId), roomLikes(roomId)])
        .then(([online, likes]) => {
          for (const group of room.groups.values()) this.deliver(group.name, { kind: 'room', roomId, online, likes });
        })
        .catch(() => undefined);
    }
  }

  /** A connection that cannot keep up is dropped before its buffer hurts the process. */
  private dropSlowConsumers(): void {
    for (const session of this.sessions) {
      if (session.bufferedBytes() > this.options.config.socketMaxBufferBytes) {
        drops.inc({ reason: 'slow_consumer', transport: session.transport });
        session.drop();
        this.closed(session);
      }
    }
    roomsGauge.set(this.hub.rooms.size);
    this.reclaim();
  }

  /**
   * One full collection when a crowd has come or gone, so an idle connector's RSS is what its
   * connections keep and not what their arrival or departure left behind. V8 collects only when
   * the process allocates, and a connector whose viewers sit idle hardly does, so without this:
   * - after a crowd leaves (a show ends), the closed connections stay resident at the peak;
   * - after a crowd arrives (a show starts), the garbage of its handshakes (HTTP parsers, upgrade
   *   requests, their buffers), promoted to the old generation during the burst, stays too: about
   *   as much again as the live connections (see bench/RESULTS.md).
   * Leaving: at least half the sessions and 1,000 of them gone since the peak. Arriving: at least
   * 1,000 sessions, and half of those open, opened since the last collection, then a tick (1 s)
   * with no new one. Only when the process runs with --expose-gc (scripts/role.sh passes it to
   * the connector). A full collection pauses every socket of the connector, so it waits for a
   * quiet moment: no packet out for QUIET_MS. While a show runs, messages keep the process allocating and V8 collects on its own; the pause would
   * land on every viewer's p99.
   */
  private reclaim(): void {
    const gone = this.peakSessions - this.sessions.size;
    const left = gone >= 1000 && this.sessions.size <= this.peakSessions / 2;
    // At least half the sessions new since the last collection: the pause grows with what is
    // open, so a big connector with a steady trickle of arrivals does not pay it every 1,000.
    const arrived = this.openedSinceGc >= Math.max(1000, this.sessions.size / 2) && !this.openedThisTick;
    this.openedThisTick = false;
    if (!left && !arrived) return;
    if (Date.now() - this.hub.lastEmitAt < QUIET_MS) return;
    const gc = (globalThis as { gc?: () => void }).gc;
    this.peakSessions = this.sessions.size;
    this.openedSinceGc = 0;
    if (typeof gc !== 'function') return;
    // A plain full collection: it frees the garbage at once but keeps the pages the survivors of a
    // burst sit scattered over (RSS barely moves yet). It also arms V8's memory reducer, which,
    // once the process has allocated little for a while, runs compacting collections of its own
    // and gives those pages back: RSS per connection 45 s after a crowd arrived, and RSS 60 s
    // after it left, came out as with a compacting collection at once (bench connections --hold).
    // No V8 flag is changed at run time; --expose-gc is a start-up flag.
    const t0 = performance.now();
    gc();
    this.options.logger.info({ closed: left ? gone : 0, open: this.sessions.size, pauseMs: Math.round(performance.now() - t0) }, left ? 'collected after many connections closed' : 'collected after many connections opened');
  }

  private every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.hub.stop();
    for (const transport of this.transports) await transport.close();
  }
}
