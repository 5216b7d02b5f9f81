import { canModerate } from '@danmaku/auth';
import { ApiError, type SendCheck } from '@danmaku/model';
import { LIMITS } from '@danmaku/protocol';
import { counter, type Logger } from '@danmaku/observability';
import { defineScripts, registerScripts, execSpread, globalKeys, guard, isCluster, keys as storeKeys, roomKeys, type Command, type RedisStore, type Redis } from '@danmaku/store';
import { WordFilter, type FilterMode } from './words.js';
import { ModerationMirror } from './mirror.js';

/** Room keys share the room's hash tag with its bans and presence (`{r:ROOM}`). */
export const moderationKeys = {
  mutes: roomKeys.mutes,
  settings: roomKeys.settings,
  slow: roomKeys.slow,
  rateUser: globalKeys.rateUser,
  rateIp: globalKeys.rateIp,
  words: globalKeys.words,
};

const refused = counter<'code'>({ name: 'danmaku_moderation_refused_total', help: 'Sends refused by a moderation or anti-abuse check', labelNames: ['code'] });
const masked = counter({ name: 'danmaku_moderation_masked_total', help: 'Sends whose text the word filter masked' });
const degraded = counter<'check'>({
  name: 'danmaku_moderation_degraded_total',
  help: 'Sends let through unchecked because Redis did not answer (the local copy of bans and mutes still refuses those users)',
  labelNames: ['check'],
});

// One round trip and one slot for everything room-scoped: ban, mute, then the slow-mode claim
// (only claimed when the user may send at all). Its four keys start at KEYS[first]; ARGV[1] is now,
// ARGV[2] the user. Returns {0} ok, {1, until} banned, {2, until} muted, {3, pttl} slow mode.
const roomGateLua = (first: number): string => `
local now = tonumber(ARGV[1])
local user = ARGV[2]
local ban = redis.call('ZSCORE', KEYS[${first}], user)
if ban and (ban == 'inf' or tonumber(ban) > now) then return {1, ban} end
local mute = redis.call('ZSCORE', KEYS[${first + 1}], user)
if mute and tonumber(mute) > now then return {2, mute} end
local slow = tonumber(redis.call('HGET', KEYS[${first + 2}], 'slowSec') or '0')
if slow and slow > 0 then
  if not redis.call('SET', KEYS[${first + 3}], '1', 'PX', math.floor(slow * 1000), 'NX') then
    return {3, redis.call('PTTL', KEYS[${first + 3}])}
  end
end
return {0, 0}
`;
const ROOM_GATE_LUA = roomGateLua(1);

// A fixed window per key: count, and the ms left when over the limit (0 = allowed).
const RATE_FUNCTION_LUA = `
local function rate(key, max, window)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, window) end
  if n > max then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then redis.call('PEXPIRE', key, window); ttl = window end
    return ttl
  end
  return 0
end
`;
// KEYS: the counter. ARGV: max, window ms.
const RATE_LUA = `${RATE_FUNCTION_LUA}
return rate(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
`;

// Rate limits and the room gate in one call, for a single Redis (where a script may touch keys of
// several slots): one round trip per send instead of two in sequence, the same verdicts in the
// same order. KEYS: rate user, rate ip (untouched unless ARGV[6] = '1'), then the room gate's four.
// ARGV: now, user, user max, ip max, window ms, ip counted, room gate skipped ('1': a moderator).
// Returns {4, pttl} user over the limit, {5, pttl} ip over the limit, else the room gate's reply.
const SEND_GATE_LUA = `${RATE_FUNCTION_LUA}
local window = tonumber(ARGV[5])
local userWait = rate(KEYS[1], tonumber(ARGV[3]), window)
local ipWait = 0
if ARGV[6] == '1' then ipWait = rate(KEYS[2], tonumber(ARGV[4]), window) end
if userWait > 0 then return {4, userWait} end
if ipWait > 0 then return {5, ipWait} end
if ARGV[7] == '1' then return {0, 0} end
${roomGateLua(3)}`;

interface ModerationRedis extends Redis {
  dmRoomGate(bans: string, mutes: string, settings: string, slow: string, now: number, userId: string): Promise<[number, string | number]>;
  dmRate(key: string, max: number, windowMs: number): Promise<number>;
  dmSendGate(
    rateUser: string,
    rateIp: string,
    bans: string,
    mutes: string,
    settings: string,
    slow: string,
    now: number,
    userId: string,
    userMax: number,
    ipMax: number,
    windowMs: number,
    ipCounted: '0' | '1',
    roomSkipped: '0' | '1',
  ): Promise<[number, string | number]>;
}

const MODERATION_SCRIPTS = registerScripts({
  dmRoomGate: { keys: 4, lua: ROOM_GATE_LUA },
  dmRate: { keys: 1, lua: RATE_LUA },
  dmSendGate: { keys: 6, lua: SEND_GATE_LUA },
});

function scripted(redis: Redis): ModerationRedis {
  return defineScripts<ModerationRedis>(redis, MODERATION_SCRIPTS);
}

export interface ModerationOptions {
  store: RedisStore;
  rateUserMax: number;
  rateIpMax: number;
  /** Addresses the per-IP limit does not apply to. */
  rateIpAllow?: readonly string[];
  rateWindowMs: number;
  sensitiveWords: readonly string[];
  sensitiveMode: FilterMode;
  logger?: Logger;
  /** How often the run-time word list (dm:words) is re-read; 0 = never. */
  wordsRefreshMs?: number;
  /** How often the local copy of a room's bans and mutes is reloaded (pub/sub reloads it on every change too). */
  mirrorRefreshMs?: number;
  /**
   * Rate limits and room gate in one script call (`gateCheck`). Default: on for a single Redis,
   * off for a cluster, where the counters and the room live in different slots and the checks
   * take a pipeline and then a script.
   */
  oneTrip?: boolean;
}

export interface PinnedNotice {
  content: string;
  by: { id: string; name: string };
  ts: number;
  /** The system message that announced it. */
  messageId: string;
}

export interface RoomModeration {
  slowModeSec: number;
  pinned: PinnedNotice | null;
  muted: number;
  banned: number;
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/**
 * Moderation state of rooms (mutes, bans, slow mode, pinned notice) and the anti-abuse checks
 * every send passes (`checks`, cheap first: length, words, rate limits, room gate).
 */
export class Moderation {
  private readonly redis: ModerationRedis;
  readonly filter: WordFilter;
  private readonly configWords: readonly string[];
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly ipAllow: ReadonlySet<string>;
  /** Bans and mutes of the rooms this process checks, for when Redis does not answer. */
  readonly mirror: ModerationMirror;

  constructor(private readonly options: ModerationOptions) {
    this.redis = scripted(options.store.write);
    this.configWords = options.sensitiveWords;
    this.ipAllow = new Set(options.rateIpAllow ?? []);
    this.filter = new WordFilter(options.sensitiveWords, options.sensitiveMode);
    this.mirror = new ModerationMirror({ redis: options.store.write, mutesKey: moderationKeys.mutes, refreshMs: options.mirrorRefreshMs, logger: options.logger });
    const every = options.wordsRefreshMs ?? 5000;
    if (every > 0) {
      this.refreshTimer = setInterval(() => void this.refreshWords(), every);
      this.refreshTimer.unref();
      void this.refreshWords();
    }
  }

  /** Configured words plus the run-time set in Redis. */
  async refreshWords(): Promise<void> {
    try {
      const extra = await guard(() => this.redis.smembers(moderationKeys.words));
      this.filter.setWords([...this.configWords, ...extra]);
    } catch {
      // Keep the list we have; Redis will be back.
    }
  }

  stop(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    this.mirror.stop();
  }

  async mute(roomId: string, userId: string, durationSec: number, now = Date.now()): Promise<number> {
    const until = now + durationSec * 1000;
    await guard(() => this.redis.zadd(moderationKeys.mutes(roomId), until, userId));
    await this.changed(roomId, 'mute', userId, until);
    return until;
  }

  async unmute(roomId: string, userId: string): Promise<void> {
    await guard(() => this.redis.zrem(moderationKeys.mutes(roomId), userId));
    await this.changed(roomId, 'mute', userId, null);
  }

  /** Bans from the room (send, enter, join); no duration = for good. Returns until (ms) or null. */
  async ban(roomId: string, userId: string, durationSec?: number, now = Date.now()): Promise<number | null> {
    const until = durationSec === undefined ? Number.POSITIVE_INFINITY : now + durationSec * 1000;
    await this.options.store.ban(roomId, userId, until);
    await this.changed(roomId, 'ban', userId, until);
    // Bans are checked on join and send; a viewer already in the room is taken out of it.
    await this.options.store.kick({ roomId, userId, code: 'banned', message: bannedError(roomId, Number.isFinite(until) ? until : 'inf').message });
    return Number.isFinite(until) ? until : null;
  }

  /** Takes the user's live sessions out of the room, once: unlike a ban, they may join again. */
  async kick(roomId: string, userId: string): Promise<void> {
    await this.options.store.kick({ roomId, userId, code: 'kicked', message: `A moderator removed you from room ${roomId}.` });
  }

  async unban(roomId: string, userId: string): Promise<void> {
    await this.options.store.unban(roomId, userId);
    await this.changed(roomId, 'ban', userId, null);
  }

  private async changed(roomId: string, kind: 'ban' | 'mute', userId: string, until: number | null): Promise<void> {
    this.mirror.apply(roomId, kind, userId, until);
    await this.mirror.announce(roomId);
  }

  /** 0 turns slow mode off. */
  async setSlowMode(roomId: string, sec: number): Promise<void> {
    await guard(() => (sec > 0 ? this.redis.hset(moderationKeys.settings(roomId), 'slowSec', sec) : this.redis.hdel(moderationKeys.settings(roomId), 'slowSec')));
  }

  async pin(roomId: string, notice: PinnedNotice): Promise<void> {
    await guard(() => this.redis.hset(moderationKeys.settings(roomId), 'pinned', JSON.stringify(notice)));
  }

  async unpin(roomId: string): Promise<void> {
    await guard(() => this.redis.hdel(moderationKeys.settings(roomId), 'pinned'));
  }

  async pinned(roomId: string): Promise<PinnedNotice | null> {
    const text = await guard(() => this.options.store.read.hget(moderationKeys.settings(roomId), 'pinned'));
    return text ? (JSON.parse(text) as PinnedNotice) : null;
  }

  /** The room's moderation state, for the stats page. */
  async room(roomId: string, now = Date.now()): Promise<RoomModeration> {
    const read = this.options.store.read;
    const [settings, muted, banned] = await guard(() =>
      Promise.all([
        read.hgetall(moderationKeys.settings(roomId)),
        read.zcount(moderationKeys.mutes(roomId), `(${now}`, '+inf'),
        read.zcount(storeKeys.bans(roomId), `(${now}`, '+inf'),
      ]),
    );
    return {
      slowModeSec: Number(settings.slowSec ?? 0),
      pinned: settings.pinned ? (JSON.parse(settings.pinned) as PinnedNotice) : null,
      muted,
      banned,
    };
  }

  /** Content rules the JSON schema cannot state: length in characters, not UTF-16 units; no control characters. */
  readonly contentCheck: SendCheck = (message) => {
    if (message.content === undefined) return;
    const content = message.content.replace(/[\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '').replace(/\s+/g, ' ').trim();
    if (content.length === 0) throw refuse(new ApiError(400, 'invalid_request', 'A comment needs some visible text.'));
    if ([...content].length > LIMITS.commentMaxChars) {
      throw refuse(new ApiError(400, 'content_too_long', `A comment is at most ${LIMITS.commentMaxChars} characters.`));
    }
    return content === message.content ? undefined : { ...message, content };
  };

  readonly wordCheck: SendCheck = (message) => {
    if (message.content === undefined || this.filter.size === 0) return;
    let content: string;
    try {
      content = this.filter.apply(message.content);
    } catch (err) {
      throw refuse(err as ApiError);
    }
    if (content === message.content) return;
    masked.inc();
    return { ...message, content };
  };

  /** Per user and per client IP, over every front (the counters live in Redis). */
  readonly rateCheck: SendCheck = async (_message, principal, context) => {
    const { rateUserMax, rateIpMax, rateWindowMs } = this.options;
    let userWait: number;
    let ipWait = 0;
    try {
      // The user's and the IP's counters sit in two slots: per node on a cluster.
      const commands: Command[] = [['dmRate', moderationKeys.rateUser(principal.id), rateUserMax, rateWindowMs]];
      if (context?.ip && !this.ipAllow.has(context.ip)) commands.push(['dmRate', moderationKeys.rateIp(context.ip), rateIpMax, rateWindowMs]);
      const results = await guard(() => execSpread(this.redis, commands));
      const values = results.map(([err, value]) => {
        if (err) throw err;
        return Number(value);
      });
      userWait = values[0] ?? 0;
      ipWait = values[1] ?? 0;
    } catch (err) {
      degraded.inc({ check: 'rate' });
      this.options.logger?.debug({ err }, 'rate limit not checked');
      return;
    }
    if (userWait > 0) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages: at most ${rateUserMax} per ${rateWindowMs / 1000} s; wait a moment.`, seconds(userWait)));
    }
    if (ipWait > 0) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages from your network: at most ${rateIpMax} per ${rateWindowMs / 1000} s.`, seconds(ipWait)));
    }
  };

  /** Bans, mutes and slow mode of the room; the room's streamer and admins pass. */
  readonly roomCheck: SendCheck = async (message, principal) => {
    if (canModerate(principal, message.roomId)) return;
    const room = message.roomId;
    this.mirror.touch(room);
    let verdict: [number, string | number];
    try {
      verdict = await guard(() =>
        this.redis.dmRoomGate(storeKeys.bans(room), moderationKeys.mutes(room), moderationKeys.settings(room), moderationKeys.slow(room, principal.id), message.ts, principal.id),
      );
    } catch (err) {
      // Redis did not answer: the local copy still refuses whom it knows to be banned or muted.
      const known = this.mirror.verdict(room, principal.id);
      if (known?.code === 'banned') throw refuse(bannedError(room, known.until));
      if (known?.code === 'muted') throw refuse(mutedError(known.until));
      degraded.inc({ check: 'room' });
      this.options.logger?.debug({ err }, 'room moderation checked against the local copy only');
      return;
    }
    const [code, value] = verdict;
    if (code === 1) throw refuse(bannedError(room, value));
    if (code === 2) throw refuse(mutedError(Number(value)));
    if (code === 3) {
      throw refuse(new ApiError(429, 'slow_mode', `Slow mode is on in this room: wait ${seconds(Number(value))} s before your next message.`, seconds(Number(value))));
    }
  };

  /**
   * rateCheck then roomCheck, in one script call: the same refusals in the same order (the rate
   * counters count every send; the room gate, and so the slow-mode slot, only sees sends within
   * the limits), the same fallbacks while Redis does not answer.
   */
  readonly gateCheck: SendCheck = async (message, principal, context) => {
    const { rateUserMax, rateIpMax, rateWindowMs } = this.options;
    const room = message.roomId;
    const moderator = canModerate(principal, room);
    if (!moderator) this.mirror.touch(room);
    const ip = context?.ip && !this.ipAllow.has(context.ip) ? context.ip : null;
    const rateUser = moderationKeys.rateUser(principal.id);
    let verdict: [number, string | number];
    try {
      verdict = await guard(() =>
        this.redis.dmSendGate(
          rateUser,
          ip === null ? rateUser : moderationKeys.rateIp(ip),
          storeKeys.bans(room),
          moderationKeys.mutes(room),
          moderationKeys.settings(room),
          moderationKeys.slow(room, principal.id),
          message.ts,
          principal.id,
          rateUserMax,
          rateIpMax,
          rateWindowMs,
          ip === null ? '0' : '1',
          moderator ? '1' : '0',
        ),
      );
    } catch (err) {
      degraded.inc({ check: 'rate' });
      if (moderator) return;
      const known = this.mirror.verdict(room, principal.id);
      if (known?.code === 'banned') throw refuse(bannedError(room, known.until));
      if (known?.code === 'muted') throw refuse(mutedError(known.until));
      degraded.inc({ check: 'room' });
      this.options.logger?.debug({ err }, 'rate limits not checked; room moderation checked against the local copy only');
      return;
    }
    const [code, value] = verdict;
    if (code === 0) return;
    if (code === 4) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages: at most ${rateUserMax} per ${rateWindowMs / 1000} s; wait a moment.`, seconds(Number(value))));
    }
    if (code === 5) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages from your network: at most ${rateIpMax} per ${rateWindowMs / 1000} s.`, seconds(Number(value))));
    }
    if (code === 1) throw refuse(bannedError(room, value));
    if (code === 2) throw refuse(mutedError(Number(value)));
    throw refuse(new ApiError(429, 'slow_mode', `Slow mode is on in this room: wait ${seconds(Number(value))} s before your next message.`, seconds(Number(value))));
  };

  /** The checks in the order a send should pass them (cheap first). */
  get checks(): SendCheck[] {
    const oneTrip = this.options.oneTrip ?? !isCluster(this.options.store.write);
    return oneTrip ? [this.contentCheck, this.wordCheck, this.gateCheck] : [this.contentCheck, this.wordCheck, this.rateCheck, this.roomCheck];
  }
}

function bannedError(roomId: string, until: string | number): ApiError {
  const forGood = until === 'inf' || !Number.isFinite(Number(until));
  return new ApiError(403, 'banned', forGood ? `You are banned from room ${roomId}.` : `You are banned from room ${roomId} until ${new Date(Number(until)).toISOString()}.`);
}

function mutedError(until: number): ApiError {
  return new ApiError(403, 'muted', `You are muted in this room until ${new Date(until).toISOString()}.`, seconds(until - Date.now()));
}

function refuse(err: ApiError): ApiError {
  refused.inc({ code: err.code });
  return err;
}

export function createModeration(options: ModerationOptions): Moderation {
  return new Moderation(options);
}
