import { canModerate } from '@danmaku/auth';
import { ApiError, type SendCheck } from '@danmaku/model';
import { LIMITS } from '@danmaku/protocol';
import { counter, type Logger } from '@danmaku/observability';
import { defineScripts, registerScripts, globalKeys, guard, keys as storeKeys, roomKeys, type RedisStore, type Redis } from '@danmaku/store';
import { WordFilter, type FilterMode } from './words.js';
import { ModerationMirror } from './mirror.js';
import { SharedRates } from './rates.js';

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
  help: 'Sends let through a check unchecked because Redis did not answer: room (a room whose bans, mutes and slow mode never loaded), slow (the slow-mode slot)',
  labelNames: ['check'],
});

// Slow mode's slot for the user in the room: taken for `ms`, or the ms left on it. KEYS: the slot.
// ARGV: ms. Returns 0 taken, else the ms left.
const SLOW_CLAIM_LUA = `
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 1 end
return left
`;

interface ModerationRedis extends Redis {
  dmSlowClaim(slot: string, ms: number): Promise<number>;
}

const MODERATION_SCRIPTS = registerScripts({
  dmSlowClaim: { keys: 1, lua: SLOW_CLAIM_LUA },
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
  /** How often the local copy of a room's bans, mutes and slow mode is reloaded (pub/sub reloads it on every change too). */
  mirrorRefreshMs?: number;
  /** The part of a rate limit a process hands out before asking Redis for each send (see SharedRates). Default 0.5. */
  rateLocalShare?: number;
  /** How long locally counted sends wait before they are added to the shared counters. Default 100 ms. */
  rateSyncMs?: number;
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
  /** Bans, mutes and slow mode of the rooms this process checks: what the room check reads. */
  readonly mirror: ModerationMirror;
  /** The per-user and per-IP counters, counted here and synced to Redis. */
  readonly rates: SharedRates;

  constructor(private readonly options: ModerationOptions) {
    this.redis = scripted(options.store.write);
    this.configWords = options.sensitiveWords;
    this.ipAllow = new Set(options.rateIpAllow ?? []);
    this.filter = new WordFilter(options.sensitiveWords, options.sensitiveMode);
    this.mirror = new ModerationMirror({
      redis: options.store.write,
      mutesKey: moderationKeys.mutes,
      settingsKey: moderationKeys.settings,
      refreshMs: options.mirrorRefreshMs,
      logger: options.logger,
    });
    this.rates = new SharedRates({
      redis: options.store.write,
      windowMs: options.rateWindowMs,
      localShare: options.rateLocalShare ?? 0.5,
      syncMs: options.rateSyncMs ?? 100,
      logger: options.logger,
    });
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
    this.rates.stop();
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
    this.mirror.applySlowMode(roomId, sec);
    await this.mirror.announce(roomId);
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

  /**
   * Per user and per client IP, over every front: counted here and added to the shared counters in
   * Redis in the background; near its limit a counter is decided by Redis (see SharedRates).
   */
  readonly rateCheck: SendCheck = async (_message, principal, context) => {
    const { rateUserMax, rateIpMax, rateWindowMs } = this.options;
    const userWait = await this.rates.take(moderationKeys.rateUser(principal.id), rateUserMax);
    if (userWait > 0) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages: at most ${rateUserMax} per ${rateWindowMs / 1000} s; wait a moment.`, seconds(userWait)));
    }
    if (!context?.ip || this.ipAllow.has(context.ip)) return;
    const ipWait = await this.rates.take(moderationKeys.rateIp(context.ip), rateIpMax);
    if (ipWait > 0) {
      throw refuse(new ApiError(429, 'rate_limited', `Too many messages from your network: at most ${rateIpMax} per ${rateWindowMs / 1000} s.`, seconds(ipWait)));
    }
  };

  /**
   * Bans, then mutes, then slow mode of the room, read from the local copy; only a room in slow
   * mode costs a Redis call (the user's slot, shared by every front). The room's streamer and
   * admins pass.
   */
  readonly roomCheck: SendCheck = async (message, principal) => {
    if (canModerate(principal, message.roomId)) return;
    const room = message.roomId;
    const loaded = await this.mirror.ready(room);
    const known = this.mirror.verdict(room, principal.id);
    if (known?.code === 'banned') throw refuse(bannedError(room, known.until));
    if (known?.code === 'muted') throw refuse(mutedError(known.until));
    if (!loaded) {
      // Redis has not answered for this room yet: nothing known against the user.
      degraded.inc({ check: 'room' });
      return;
    }
    const slowSec = this.mirror.slowSec(room);
    if (slowSec <= 0) return;
    let left: number;
    try {
      left = Number(await guard(() => this.redis.dmSlowClaim(moderationKeys.slow(room, principal.id), Math.floor(slowSec * 1000))));
    } catch (err) {
      degraded.inc({ check: 'slow' });
      this.options.logger?.debug({ err }, 'slow mode not checked');
      return;
    }
    if (left > 0) {
      throw refuse(new ApiError(429, 'slow_mode', `Slow mode is on in this room: wait ${seconds(left)} s before your next message.`, seconds(left)));
    }
  };

  /** The checks in the order a send should pass them (cheap first). */
  readonly checks: SendCheck[] = [this.contentCheck, this.wordCheck, this.rateCheck, this.roomCheck];
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
