import type { Logger } from '@danmaku/observability';
import type { FrontDeps } from '../context.js';
import { LikeCounter } from '../likes.js';
import { EnterAnnouncer } from './enter.js';
import { RoomCache } from './room-cache.js';
import { Pressure } from './shape.js';

/** What keeps a big room cheap for the front: local cache, aggregated likes, enter messages, pressure. */
export interface FrontHot {
  cache: RoomCache;
  likes: LikeCounter;
  pressure: Pressure;
  enters: EnterAnnouncer;
  stop(): Promise<void>;
}

/** Builds and starts it; timers are unref'd and `stop` (on app close) ends them. */
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
  const likes = new LikeCounter(store.write, config.likesFlushMs);
  likes.start();
  const pressure = new Pressure(config.pressureLagMs);
  pressure.start();
  const enters = new EnterAnnouncer(deps.send, switches, cache, config.bigRoomOnline, config.onlineTtlMs, logger);
  return {
    cache,
    likes,
    pressure,
    enters,
    async stop() {
      cache.stop();
      pressure.stop();
      await likes.stop().catch(() => undefined);
    },
  };
}
