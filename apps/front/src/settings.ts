import type { Config } from '@danmaku/config';

/** Every setting the front's routes read (FrontDeps.config). */
export const FRONT_SETTINGS = [
  'host',
  'port',
  'trustProxy',
  'jwtSecret',
  'cluster',
  'retention',
  'onlineTtlMs',
  'switchesRefreshMs',
  'cacheRefreshMs',
  'bigRoomOnline',
  'bigRoomPollRate',
  'bigRoomCoolMs',
  'bigRoomPollLimit',
  'bigRoomSpanMs',
  'pressureLagMs',
  'pollMemoryStreams',
  'pollMemoryWindow',
  'pollMemoryIdleMs',
  'pollRetryMs',
  'catchUpMaxAgeMs',
  'likesFlushMs',
  'frameAncestors',
  'corsOrigins',
] as const;
export type FrontSettings = Pick<Config, (typeof FRONT_SETTINGS)[number]>;
