import type { Config } from '@danmaku/config';

/** Every setting the pusher reads: its slice of the configuration. */
export const PUSHER_SETTINGS = ['host', 'pusherPort', 'cluster', 'pushBigRoom', 'pushSmallRoom', 'pushNotifyDelayMs'] as const;
export type PusherSettings = Pick<Config, (typeof PUSHER_SETTINGS)[number]>;
