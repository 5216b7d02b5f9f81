import type { Config } from '@danmaku/config';
import { Lives, type LiveStates } from '@danmaku/lives';
import type { Logger } from '@danmaku/observability';
import { createRedis, RedisSignals, type Redis } from '@danmaku/store';
import { Archive } from './archive.js';
import { REPLAY_CHANNEL, ReplayReader } from './replay.js';

export interface ReplayStack {
  archive: Archive;
  /** Start and end of lives, recorded in the archive. */
  lives: Lives;
  replay: ReplayReader;
  /** The replay Redis client (REPLAY_REDIS_URL, else REDIS_URL). */
  replayRedis: Redis;
  close(): Promise<void>;
}

export interface ReplayStackDeps {
  /** The live store's primary: the rooms' live state sits there, and replay events go over it. */
  redis: Redis;
  /** The process's live states (the send pipeline's), so starting a live here drops their cache. */
  states: LiveStates;
  logger: Logger;
  /** Names this process's connections (CLIENT LIST). */
  name: string;
  /** Where to read the archived-up-to watermark (default: the deployment's, archiveScope). */
  progressScope?: string;
}

/**
 * Where archivers record their archived-up-to watermark and replay readers look for it: one
 * deployment (DANMAKU_CLUSTER) and topic. A process with its own in-memory bus (standalone)
 * passes a scope of its own, since its archiver is the only one that writes what it reads.
 */
export function archiveScope(config: Config): string {
  return `${config.cluster}/${config.topic}`;
}

/** How long an archiver's watermark counts after it was written (it writes about every second). */
export const WATERMARK_FRESH_MS = 15_000;

/**
 * What a front needs for lives and replay: the MySQL archive, lives recorded in it, the replay
 * reader over its own Redis connection, and a subscriber that keeps the per-process replay cache
 * honest across fronts.
 */
export function openReplay(config: Config, deps: ReplayStackDeps): ReplayStack {
  const { redis, states, logger, name } = deps;
  const scope = deps.progressScope ?? archiveScope(config);
  const archive = new Archive(config.mysqlUrl, { queryTimeoutMs: Math.max(1000, config.redisTimeoutMs * 3) });
  // Without a replay Redis of its own, replay shares the live store (on a cluster: the cluster).
  const ownReplayRedis = config.replayRedisUrl !== null || !config.redisClusterNodes;
  const replayRedis = ownReplayRedis
    ? createRedis(config.replayRedisUrl ?? config.redisUrl, { name: `${name}-replay`, commandTimeoutMs: config.redisTimeoutMs })
    : redis;
  const signals = new RedisSignals(redis, `${name}-replay`);
  const lives = new Lives({ redis, records: archive, logger, states });
  const replay = new ReplayReader({
    archive,
    redis: replayRedis,
    segmentMs: config.replaySegmentMs,
    redisTtlS: config.replayRedisTtlS,
    cacheBytes: config.replayCacheMb * 1024 * 1024,
    settleMs: config.replaySettleMs,
    archivedThrough: () => archive.archivedThrough(scope, WATERMARK_FRESH_MS),
    announce: async (liveId) => {
      await signals.publish(REPLAY_CHANNEL, liveId);
    },
    logger,
  });

  const subscribing = signals
    .subscribe(
      [REPLAY_CHANNEL],
      (channel, text) => {
        if (channel === REPLAY_CHANNEL) replay.dropLocal(text);
      },
      // Events published while we were away are lost: start from clean caches.
      () => replay.clearLocal(),
    )
    .catch((err: unknown) => {
      logger.warn({ err }, 'replay subscription failed');
      return null;
    });

  return {
    archive,
    lives,
    replay,
    replayRedis,
    async close() {
      await (await subscribing)?.close();
      // quit() cannot reach a Redis that is down, and the client would keep reconnecting.
      if (ownReplayRedis) await replayRedis.quit().catch(() => replayRedis.disconnect());
      await archive.close();
    },
  };
}
