/**
 * Runtime degrade switches and per-(room, type) gears. Both live in Redis so operators (and the
 * processor) change them without restarts; every process reads them from a memory snapshot
 * refreshed about once a second, so the hot paths (send, poll) never pay a Redis call for them.
 */
import type { Redis } from 'ioredis';
import { ApiError, partitionFor, streamKey, type SendCheck } from '@danmaku/model';
import type { MessageType } from '@danmaku/protocol';
import { counter } from '@danmaku/observability';
import { defineScripts, execSpread, globalKeys, registerScripts } from '@danmaku/store';

export interface Switches {
  /** false: no "X joined" messages in any room. */
  enterMessages: boolean;
  /** false: `POST /v1/rooms/:roomId/likes` answers 503 `likes_disabled`. */
  likes: boolean;
  /** true: the router tells every client to use short polling (no long connections). */
  forcePolling: boolean;
  /** The least `retryAfterMs` a poll answers with; 0 = the server's default. */
  pollIntervalMs: number;
  /** Rooms whose sends are refused (403 `room_read_only`); `"*"` means every room. */
  readOnlyRooms: string[];
  /**
   * Share of comments a big room keeps, 0..1, on its polls and on its long connections (a
   * connector holding at least DANMAKU_PUSH_BIG_ROOM of its sockets); gifts are never dropped.
   */
  bigRoomSampleRatio: number;
}

/** Types a big room may thin out; gifts and system notices are never dropped. */
export const SAMPLED_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['comment', 'enter', 'like']);

/**
 * Deterministic by seq, so every front, every connector and every viewer keeps the same subset:
 * a message dropped for one is dropped for all, whether they poll or hold a connection.
 */
export function keptBySample(seq: number, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return (Math.imul(seq, 0x9e3779b1) >>> 0) / 0x1_0000_0000 < ratio;
}

export const DEFAULT_SWITCHES: Readonly<Switches> = Object.freeze({
  enterMessages: true,
  likes: true,
  forcePolling: false,
  pollIntervalMs: 0,
  readOnlyRooms: [],
  bigRoomSampleRatio: 1,
});

/** Body of `PUT /v1/admin/switches`: any subset of the switches. */
export const switchesPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    enterMessages: { type: 'boolean' },
    likes: { type: 'boolean' },
    forcePolling: { type: 'boolean' },
    pollIntervalMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    readOnlyRooms: { type: 'array', maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: '^(\\*|[A-Za-z0-9_-]{1,64})$' } },
    bigRoomSampleRatio: { type: 'number', minimum: 0, maximum: 1 },
  },
} as const;

export type SwitchesPatch = Partial<Switches>;

/** Redis keys: one hash of switches (field = name, value = JSON), one hash of gears (field = room:type). */
export const SWITCHES_KEY = globalKeys.switches;
export const GEARS_KEY = globalKeys.gears;

/**
 * Gears of a (room, type) stream, so a hot room does not back up in one partition: 1 one
 * partition, serial; 2 several partitions, serial per partition; 3 one partition, several Lua calls in flight; 4 both.
 * Every gear keeps invariant 1 because seq allocation and ZADD are one Lua call.
 */
export type Gear = 1 | 2 | 3 | 4;
export const MAX_GEAR: Gear = 4;
/** The front spreads the stream over several partitions. */
export const spreads = (gear: number): boolean => gear === 2 || gear === 4;
/** The processor keeps several Lua calls of the stream in flight. */
export const parallel = (gear: number): boolean => gear >= 3;

const refreshErrors = counter({ name: 'danmaku_switches_refresh_errors_total', help: 'Failed refreshes of the switches/gears snapshot (the last snapshot stays in use)' });

export interface SwitchboardOptions {
  /** The primary: switches are control data, read where they are written. */
  redis: Redis;
  refreshMs?: number;
}

function parseSwitches(raw: Record<string, string>): Switches {
  const out: Switches = { ...DEFAULT_SWITCHES, readOnlyRooms: [] };
  const target = out as unknown as Record<string, unknown>;
  for (const [name, text] of Object.entries(raw)) {
    if (!(name in DEFAULT_SWITCHES)) continue;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === typeof (DEFAULT_SWITCHES as unknown as Record<string, unknown>)[name]) target[name] = value;
    } catch {
      // A hand-edited bad value keeps the default rather than breaking every process.
    }
  }
  return out;
}

/** The in-memory view of switches and gears one process works from. */
export class Switchboard {
  private switches: Switches = { ...DEFAULT_SWITCHES, readOnlyRooms: [] };
  private readOnly = new Set<string>();
  private gears = new Map<string, Gear>();
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly redis: Redis;
  private readonly refreshMs: number;

  constructor(options: SwitchboardOptions) {
    this.redis = options.redis;
    this.refreshMs = options.refreshMs ?? 1000;
  }

  /** Loads the snapshot once (best effort: defaults when Redis is down) and keeps it fresh. */
  async start(): Promise<this> {
    await this.refresh().catch(() => undefined);
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.refreshMs);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round trip for both hashes; single flight, so a slow Redis never stacks refreshes. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        // Two keys in two slots: one pipeline, or one per node on a cluster.
        const replies = await execSpread(this.redis, [['hgetall', SWITCHES_KEY], ['hgetall', GEARS_KEY]]);
        const [switchesReply, gearsReply] = replies ?? [];
        if (!switchesReply || !gearsReply || switchesReply[0] || gearsReply[0]) throw switchesReply?.[0] ?? gearsReply?.[0] ?? new Error('no reply');
        this.apply(parseSwitches(switchesReply[1] as Record<string, string>));
        const gears = new Map<string, Gear>();
        const now = Date.now();
        for (const [key, text] of Object.entries(gearsReply[1] as Record<string, string>)) {
          const gear = parseGear(text, now);
          if (gear >= 2) gears.set(key, gear);
        }
        this.gears = gears;
      } catch (err) {
        refreshErrors.inc();
        throw err;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private apply(switches: Switches): void {
    this.switches = switches;
    this.readOnly = new Set(switches.readOnlyRooms);
  }

  get(): Readonly<Switches> {
    return this.switches;
  }

  /** Changes some switches in Redis; this process sees them at once, the others within a refresh. */
  async set(patch: SwitchesPatch): Promise<Switches> {
    const fields: string[] = [];
    for (const [name, value] of Object.entries(patch)) {
      if (name in DEFAULT_SWITCHES && value !== undefined) fields.push(name, JSON.stringify(value));
    }
    if (fields.length > 0) await this.redis.hset(SWITCHES_KEY, ...fields);
    await this.refreshAfterWrite();
    return this.switches;
  }

  /** A refresh that started before our write would answer with the old values: wait it out, then read. */
  private async refreshAfterWrite(): Promise<void> {
    if (this.refreshing) await this.refreshing.catch(() => undefined);
    await this.refresh();
  }

  /** Back to the defaults (tests, and operators undoing a degrade). */
  async reset(): Promise<Switches> {
    await this.redis.del(SWITCHES_KEY);
    await this.refreshAfterWrite();
    return this.switches;
  }

  isReadOnly(roomId: string): boolean {
    return this.readOnly.size > 0 && (this.readOnly.has(roomId) || this.readOnly.has('*'));
  }

  /** Read by the router (another role): true sends every client to short polling. */
  forcePolling(): boolean {
    return this.switches.forcePolling;
  }

  gear(roomId: string, type: MessageType): Gear {
    return this.gearOf(streamKey(roomId, type));
  }

  gearOf(key: string): Gear {
    return this.gears.get(key) ?? 1;
  }

  /** Streams above gear 1, for the admin view. */
  hotStreams(): Record<string, Gear> {
    return Object.fromEntries(this.gears);
  }
}

/**
 * How long a processor's word on a gear holds. Several processors may each see part of a spread
 * stream and judge its gear differently; the published gear is the highest one still under lease,
 * so one calm processor cannot undo another's climb. Processors renew their gears every second.
 */
export const GEAR_LEASE_MS = 5000;

// Value "gear|leaseUntilMs". A lower gear (1 = delete) only replaces a higher one whose lease ran out.
const PUBLISH_GEAR_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local gear = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if cur then
  local g, u = string.match(cur, '^(%d+)|(%d+)$')
  if g and tonumber(g) > gear and tonumber(u) > now then return 0 end
end
if gear <= 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], gear .. '|' .. (now + tonumber(ARGV[4])))
end
return 1
`;

// Drops entries whose lease ran out (their processor came down or died).
const SWEEP_GEARS_LUA = `
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #all, 2 do
  local u = string.match(all[i + 1], '|(%d+)$')
  if u and tonumber(u) <= now then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
return n
`;

interface GearRedis extends Redis {
  dmPublishGear(gears: string, key: string, gear: number, now: number, leaseMs: number): Promise<number>;
  dmSweepGears(gears: string, now: number): Promise<number>;
}

const GEAR_SCRIPTS = registerScripts({ dmPublishGear: { keys: 1, lua: PUBLISH_GEAR_LUA }, dmSweepGears: { keys: 1, lua: SWEEP_GEARS_LUA } });

const gearScripts = (redis: Redis): GearRedis => defineScripts<GearRedis>(redis, GEAR_SCRIPTS);

/**
 * The processor's side: states its gear for a stream under a lease (gear 1 is the absence of an
 * entry). Resolves false when a higher gear of another processor still holds.
 */
export async function publishGear(redis: Redis, key: string, gear: Gear, now = Date.now()): Promise<boolean> {
  return (await gearScripts(redis).dmPublishGear(GEARS_KEY, key, gear, now, GEAR_LEASE_MS)) === 1;
}

/** Removes gears whose lease ran out; processors call it now and then. */
export async function sweepGears(redis: Redis, now = Date.now()): Promise<number> {
  return gearScripts(redis).dmSweepGears(GEARS_KEY, now);
}

/** A published gear: "g|until" under a lease (ignored once it ran out), or a plain "g" pinned by an operator. */
export function parseGear(text: string, now = Date.now()): Gear {
  const [g, until] = text.split('|');
  const gear = Number(g);
  if (!(gear >= 2 && gear <= MAX_GEAR)) return 1;
  if (until !== undefined && !(Number(until) > now)) return 1;
  return gear as Gear;
}

/**
 * The ingest `partition` option: a stream in gear 2 or 4 goes round-robin over `spread`
 * consecutive partitions; in gears 1 and 3 it stays on its home partition.
 */
export function gearPartitioner(board: Switchboard, partitions: number, spread: number): (key: string) => number {
  let turn = 0;
  return (key) => {
    if (!spreads(board.gearOf(key))) return partitionFor(key, partitions);
    turn = (turn + 1) & 0xffff;
    return partitionFor(key, partitions, spread, turn);
  };
}

/** The read-only-room switch as an ingest check. */
export function readOnlyCheck(board: Switchboard): SendCheck {
  return (message) => {
    if (board.isReadOnly(message.roomId)) {
      throw new ApiError(403, 'room_read_only', 'This room is read-only right now: sending is paused by the operators. Try again later.');
    }
  };
}
