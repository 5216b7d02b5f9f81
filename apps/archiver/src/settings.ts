import type { Config } from '@danmaku/config';

/** Every setting the archiver reads: its slice of the configuration. */
export const ARCHIVER_SETTINGS = ['host', 'archiverPort', 'mysqlUrl', 'topic', 'archiverBatch', 'archiverLingerMs'] as const;
export type ArchiverSettings = Pick<Config, (typeof ARCHIVER_SETTINGS)[number]>;
