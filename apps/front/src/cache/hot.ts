import type { Logger } from '@danmaku/observability';
import type { FrontDeps, FrontHot } from '../context.js';
import { LikeCounter } from '../likes.js';
import { EnterAnnouncer } from './enter.js';
import { PollMemory } from './memory.js';
import { RoomCache } from './room-cache.js';
import { Pressure } from './shape.js';

/** Builds and starts the hot-room machinery; timers are unref'd and `stop` (on app close) ends them. */
export function createHot(deps: FrontDeps, logger: Logger): FrontHot {
  const { config, store, switches } = deps;
  const cache = new RoomCache({
    store,
    signals: store.signals,
    window: config.retention,
    refreshMs: config.cacheRefreshMs,
    bigOnline: config.bigRoomOnline,
    bigPollRate: config.bigRoomPollRate,
    coolMs: config.bigRoomCoolMs,
    logger,
  });
  void cache.start();
  const memory = new PollMemory({
    store,
    signals: store.signals,
    maxStreams: config.pollMemoryStreams,
    window: config.pollMemoryWindow,
    idleMs: config.pollMemoryIdleMs,
    logger,
  });
  void memory.start();
  const likes = new LikeCounter(store.write, config.likesFlushMs);
  likes.start();
  const pressure = new Pressure(config.pressureLagMs);
  pressure.start();
  const enters = new EnterAnnouncer(deps.send, switches, cache, config.bigRoomOnline, config.onlineTtlMs, logger);
  return {
    cache,
    memory,
    likes,
    pressure,
    enters,
    async stop() {
      cache.stop();
      memory.stop();
      pressure.stop();
      await likes.stop().catch(() => undefined);
    },
  };
}
