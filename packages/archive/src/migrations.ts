import type { Pool, RowDataPacket } from 'mysql2/promise';

/**
 * The archive schema, one numbered step at a time. A step is never edited once shipped; a
 * change is a new step. `migrate` applies the steps a database has not seen, in order.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

// utf8mb4_bin: message ids are base64url, so case matters ("aB" and "Ab" are two messages).
const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'messages, lives, deleted_messages',
    statements: [
      // The primary key clusters a live's messages by offset, so a replay segment is one
      // contiguous range scan; the unique id makes redelivered batches no-ops (INSERT IGNORE).
      `CREATE TABLE IF NOT EXISTS messages (
        live_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'empty when no live was on',
        offset_ms BIGINT NOT NULL DEFAULT 0 COMMENT 'ms since the live started',
        type VARCHAR(8) NOT NULL,
        id VARCHAR(64) NOT NULL,
        room_id VARCHAR(64) NOT NULL,
        ts BIGINT NOT NULL COMMENT 'front receive time, ms',
        user_id VARCHAR(64) NOT NULL,
        body TEXT NOT NULL COMMENT 'the message JSON as the front put it on the bus',
        archived_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        PRIMARY KEY (live_id, offset_ms, type, id),
        UNIQUE KEY uq_messages_id (id),
        KEY idx_messages_room_ts (room_id, ts)
      ) ${TABLE_OPTIONS}`,
      `CREATE TABLE IF NOT EXISTS lives (
        live_id VARCHAR(64) NOT NULL,
        room_id VARCHAR(64) NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT NULL,
        started_by VARCHAR(64) NOT NULL,
        PRIMARY KEY (live_id),
        KEY idx_lives_room (room_id, started_at)
      ) ${TABLE_OPTIONS}`,
      // Tombstones are kept apart from messages: a delete may arrive before the archiver has
      // written the message, and replay must drop it either way.
      `CREATE TABLE IF NOT EXISTS deleted_messages (
        room_id VARCHAR(64) NOT NULL,
        id VARCHAR(64) NOT NULL,
        deleted_by VARCHAR(64) NOT NULL,
        deleted_at BIGINT NOT NULL,
        PRIMARY KEY (room_id, id)
      ) ${TABLE_OPTIONS}`,
    ],
  },
  {
    version: 2,
    name: 'lives: playback and recording urls',
    statements: [
      // Where viewers watch the live (HLS, MP4 or WebM) and, once it ended, its recording; the
      // pages play them under the danmaku. NULL: no video, the pages show danmaku alone.
      'ALTER TABLE lives ADD COLUMN IF NOT EXISTS playback_url VARCHAR(2048) NULL',
      'ALTER TABLE lives ADD COLUMN IF NOT EXISTS recording_url VARCHAR(2048) NULL',
    ],
  },
  {
    // Numbered apart from its neighbours: several branches add migrations at the same time, and a
    // shared database that recorded one branch's version would skip another's under the same number.
    version: 5,
    name: 'archive_progress (the archived-up-to watermark of replay)',
    statements: [
      `CREATE TABLE IF NOT EXISTS archive_progress (
        scope VARCHAR(200) NOT NULL,
        archiver VARCHAR(64) NOT NULL,
        through_ts BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (scope, archiver)
      ) ${TABLE_OPTIONS}`,
    ],
  },
];

/**
 * Brings the database to the newest version. Several processes may start at once, so the
 * steps run under a named lock; each applied step is recorded in schema_migrations.
 * Returns the versions it applied.
 */
export async function migrate(pool: Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const conn = await pool.getConnection();
  try {
    const [lock] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK('danmaku_migrate', 30) AS got");
    if (Number(lock[0]?.got) !== 1) throw new Error('another process holds the migration lock for more than 30 s');
    try {
      await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
      ) ${TABLE_OPTIONS}`);
      const [rows] = await conn.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => Number(r.version)));
      const applied: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        // MySQL commits DDL implicitly, so each statement is written to be re-runnable
        // (IF NOT EXISTS) in case a crash lands between a statement and the record.
        for (const statement of m.statements) await conn.query(statement);
        await conn.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [m.version, m.name]);
        applied.push(m.version);
      }
      return applied;
    } finally {
      await conn.query("SELECT RELEASE_LOCK('danmaku_migrate')").catch(() => undefined);
    }
  } finally {
    conn.release();
  }
}

/** The newest version applied, 0 for an empty database. */
export async function schemaVersion(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
  return Number(rows[0]?.v ?? 0);
}
