export { Archive, toArchiveRow, type ArchiveRow, type ArchiveOptions, type LiveRecord, type LiveUrls, type ReplayRow } from './archive.js';
export { MIGRATIONS, migrate, schemaVersion, type Migration } from './migrations.js';
export { createMysql, ensureDatabase, guardMysql, type Pool } from './mysql.js';
export { ReplayReader, REPLAY_CHANNEL, MAX_SEGMENTS_PER_READ, replayKeys, type Density, type ReplayOptions, type ReplayPage, type ReplayQuery } from './replay.js';
export { archiveScope, openReplay, WATERMARK_FRESH_MS, type ReplayStack, type ReplayStackDeps } from './open.js';
