import type { Auth } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import type { SendPipeline } from '@danmaku/send';
import type { RedisStore } from '@danmaku/store';
import type { Switchboard } from '@danmaku/switches';
import type { ReplayStack } from '@danmaku/archive';
import type { Moderation } from '@danmaku/moderation';
import type { EnterAnnouncer } from './cache/enter.js';
import type { PollMemory } from './cache/memory.js';
import type { RoomCache } from './cache/room-cache.js';
import type { Pressure } from './cache/shape.js';
import type { LikeCounter } from './likes.js';
import type { FrontSettings } from './settings.js';

/** What the front's routes share; built once by whoever wires the app (main or standalone). */
export interface FrontDeps {
  /** The settings the front's routes read (its slice of the config). */
  config: FrontSettings;
  store: RedisStore;
  bus: Bus;
  auth: Auth;
  /** The send pipeline (checks, stamp, produce); shared with the connector. */
  send: SendPipeline;
  /** Degrade switches and gears: the ones the send pipeline's partitioner and read-only check use. */
  switches: Switchboard;
  /** Lives, the MySQL archive and the replay reader (openReplay in @danmaku/archive). */
  replay: ReplayStack;
  /** Mutes, bans, slow mode, pinned notice; its checks are in the send pipeline. */
  moderation: Moderation;
}

/** What each route plugin is registered with: the deps and the hot-room machinery. */
export interface FrontContext extends FrontDeps {
  hot: FrontHot;
}

/** What keeps rooms cheap for the front: local cache, poll memory, aggregated likes, enter messages, pressure. */
export interface FrontHot {
  cache: RoomCache;
  /** Small rooms' polls, answered from windows kept fresh by the rooms' signals. */
  memory: PollMemory;
  likes: LikeCounter;
  pressure: Pressure;
  enters: EnterAnnouncer;
  stop(): Promise<void>;
}
