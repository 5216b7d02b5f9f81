import type { Config } from '@danmaku/config';

/** Every setting the router reads: its slice of the configuration. */
export const ROUTER_SETTINGS = ['host', 'routerPort', 'cluster', 'switchesRefreshMs', 'corsOrigins'] as const;
export type RouterSettings = Pick<Config, (typeof ROUTER_SETTINGS)[number]>;
