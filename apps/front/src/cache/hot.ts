import type { Logger } from '@danmaku/observability';
import { Switchboard } from '@danmaku/switches';
import type { FrontDeps } from '../context.js';
import { LikeCounter } from '../likes.js';
import { EnterAnnouncer } from './enter.js';
import { RoomCache } from './room-cache.js';
import { Pressure } from './shape.js';

/** What keeps a big room cheap for the front: local cache, aggregated likes, switches, pressure. */
export interface FrontHot {
  switches: Switchboard;
  cache: RoomCache;
  likes: LikeCounter;
  pressure: Pressure;
  enters: EnterAnnouncer;
  stop(): Promise<void>;
}

/** Builds and starts it; timers are unref'd and `stop` (on app close) ends them. */
export function createHot(deps: FrontDeps, logger: Logger): FrontHot {
  const { config, store } = deps;
  const ownSwitches = !deps.switches;
  const switches = deps.switches ?? new Switchboard({ redis: store.write, refreshMs: config.switchesRefreshMs });
  if (ownSwitches) void switches.start();
  const cache = new RoomCache({
    store,
    // Deletions are published on the primary; the subscriber needs a connection of its own.
    subscriber: store.write.duplicate({ connectionName: 'front-deleted' }),
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
  const enters = new EnterAnnouncer(deps.ingest, switches, cache, config.bigRoomOnline, config.onlineTtlMs, logger);
  return {
    switches,
    cache,
    likes,
    pressure,
    enters,
    async stop() {
      cache.stop();
      pressure.stop();
      if (ownSwitches) switches.stop();
      await likes.stop().catch(() => undefined);
    },
  };
}
