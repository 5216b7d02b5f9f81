import type { Config } from '@danmaku/config';

/** Every setting the connector reads: its slice of the configuration. */
export const CONNECTOR_SETTINGS = [
  'host',
  'connectorPort',
  'connectorWorkers',
  'connectorUrl',
  'cluster',
  'anonViewers',
  'onlineTtlMs',
  'catchUpMaxAgeMs',
  'pushMergeMs',
  'pushBigMergeMs',
  'pushBigRoom',
  'pushNotifyDelayMs',
  'pushSweepMs',
  'socketPingMs',
  'socketPingTimeoutMs',
  'socketMaxBufferBytes',
  'roomInfoMs',
  'biliTcpPort',
  'corsOrigins',
  'switchesRefreshMs',
  'drainMs',
  'roomDeliveryBudget',
] as const;
export type ConnectorSettings = Pick<Config, (typeof CONNECTOR_SETTINGS)[number]>;
