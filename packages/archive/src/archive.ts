import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { counter } from '@danmaku/observability';
import type { UnsequencedMessage } from '@danmaku/model';
import { isMessageType, type MessageType } from '@danmaku/protocol';
import type { LiveRecord, LiveRecords } from '@danmaku/lives';

export type { LiveRecord };
import { migrate } from './migrations.js';
import { createMysql, ensureDatabase, guardMysql } from './mysql.js';

const archived = counter({ name: 'danmaku_archive_inserted_total', help: 'Messages written to MySQL (first time)' });
const redelivered = counter({ name: 'danmaku_archive_duplicates_total', help: 'Archive rows skipped because the id was already stored' });

/** A message as archived: the bus JSON and the fields its indexes need. */
export interface ArchiveRow {
  id: string;
  roomId: string;
  type: MessageType;
  ts: number;
  userId: string;
  liveId: string | null;
  offsetMs: number | null;
  body: string;
}

/** A stored message of a live, as a replay segment needs it. */
export interface ReplayRow {
  type: MessageType;
  offsetMs: number;
  body: string;
}

/** The video links of a live that a streamer may set; an absent field is left as it is. */
export interface LiveUrls {
  playbackUrl?: string | null;
  recordingUrl?: string | null;
}

const LIVE_COLUMNS = 'live_id, room_id, started_at, ended_at, playback_url, recording_url';

function toLiveRecord(r: RowDataPacket): LiveRecord {
  return {
    liveId: String(r.live_id),
    roomId: String(r.room_id),
    startedAt: Number(r.started_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    // Only when set: a live without video reads as it did before lives had links.
    ...(r.playback_url === null ? {} : { playbackUrl: String(r.playback_url) }),
    ...(r.recording_url === null ? {} : { recordingUrl: String(r.recording_url) }),
  };
}

/** Parses a bus record into a row; null when it is not a message (the caller skips it). */
export function toArchiveRow(json: string): ArchiveRow | null {
  let m: UnsequencedMessage;
  try {
    m = JSON.parse(json) as UnsequencedMessage;
  } catch {
    return null;
  }
  if (!m || typeof m.id !== 'string' || typeof m.roomId !== 'string' || typeof m.type !== 'string' || !isMessageType(m.type)) return null;
  if (typeof m.ts !== 'number' || typeof m.user?.id !== 'string') return null;
  const live = typeof m.liveId === 'string' && typeof m.offsetMs === 'number';
  return {
    id: m.id,
    roomId: m.roomId,
    type: m.type,
    ts: m.ts,
    userId: m.user.id,
    liveId: live ? (m.liveId as string) : null,
    offsetMs: live ? (m.offsetMs as number) : null,
    body: json,
  };
}

export interface ArchiveOptions {
  /** Connections per process. */
  connectionLimit?: number;
  /** Read queries of clients fail (503) after this long. */
  queryTimeoutMs?: number;
  /** A batch insert fails (and the bus redelivers it) after this long. */
  insertTimeoutMs?: number;
}

/**
 * The MySQL archive: every message (idempotent by id), the lives, and tombstones. The schema is
 * brought up to date lazily before the first statement, so a role starts even while MySQL is
 * still coming up; until then, writes are retried by the bus and reads answer 503.
 */
export class Archive implements LiveRecords {
  readonly pool: Pool;
  private schema: Promise<void> | null = null;
  private readonly queryTimeoutMs: number;
  private readonly insertTimeoutMs: number;

  constructor(
    readonly url: string,
    options: ArchiveOptions = {},
  ) {
    this.pool = createMysql(url, { connectionLimit: options.connectionLimit });
    this.queryTimeoutMs = options.queryTimeoutMs ?? 3000;
    this.insertTimeoutMs = options.insertTimeoutMs ?? 15_000;
  }

  /** Creates the database when missing and applies the migrations (once per process). */
  ready(): Promise<void> {
    if (!this.schema) {
      this.schema = (async () => {
        await ensureDatabase(this.url);
        await migrate(this.pool);
      })();
      this.schema.catch(() => {
        this.schema = null;
      });
    }
    return this.schema;
  }

  /** Inserts a batch; rows whose id is stored already are skipped. Returns how many were new. */
  async insert(rows: readonly ArchiveRow[], chunk = 1000): Promise<number> {
    await this.ready();
    let added = 0;
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const values = part.map((r) => [r.liveId ?? '', r.offsetMs ?? 0, r.type, r.id, r.roomId, r.ts, r.userId, r.body]);
      const [result] = await this.pool.query<ResultSetHeader>(
        // A hung MySQL must fail the batch (the bus redelivers it), not stall the consumer forever.
        { sql: 'INSERT IGNORE INTO messages (live_id, offset_ms, type, id, room_id, ts, user_id, body) VALUES ?', timeout: this.insertTimeoutMs },
        [values],
      );
      added += result.affectedRows;
      archived.inc(result.affectedRows);
      redelivered.inc(part.length - result.affectedRows);
    }
    return added;
  }

  /** The messages of a live with from <= offsetMs < to, tombstoned ones left out, in replay order. */
  async readWindow(liveId: string, fromMs: number, toMs: number): Promise<ReplayRow[]> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        {
          sql: `SELECT m.type, m.offset_ms, m.body FROM messages m
                WHERE m.live_id = ? AND m.offset_ms >= ? AND m.offset_ms < ?
                  AND NOT EXISTS (SELECT 1 FROM deleted_messages d WHERE d.room_id = m.room_id AND d.id = m.id)
                ORDER BY m.offset_ms, m.type, m.id`,
          timeout: this.queryTimeoutMs,
        },
        [liveId, fromMs, toMs],
      );
      return rows.map((r) => ({ type: r.type as MessageType, offsetMs: Number(r.offset_ms), body: String(r.body) }));
    });
  }

  /**
   * The archiver `archiver` of `scope` (cluster/topic) has stored every message stamped at or
   * before `throughTs`. Written about once a second by each archiver.
   */
  async recordProgress(scope: string, archiver: string, throughTs: number, now = Date.now()): Promise<void> {
    await this.ready();
    await this.pool.query(
      { sql: 'INSERT INTO archive_progress (scope, archiver, through_ts, updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE through_ts = VALUES(through_ts), updated_at = VALUES(updated_at)', timeout: this.queryTimeoutMs },
      [scope, archiver, throughTs, now],
    );
  }

  /** An archiver leaving cleanly takes its watermark with it (a killed one's goes stale instead). */
  async forgetProgress(scope: string, archiver: string): Promise<void> {
    await this.pool.query({ sql: 'DELETE FROM archive_progress WHERE scope = ? AND archiver = ?', timeout: this.queryTimeoutMs }, [scope, archiver]);
  }

  /**
   * Archived up to: the lowest watermark of the archivers of `scope` that reported within
   * `freshMs`; null when none did (nothing may be taken as finished).
   */
  async archivedThrough(scope: string, freshMs: number, now = Date.now()): Promise<number | null> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        { sql: 'SELECT MIN(through_ts) AS w, COUNT(*) AS n FROM archive_progress WHERE scope = ? AND updated_at > ?', timeout: this.queryTimeoutMs },
        [scope, now - freshMs],
      );
      return Number(rows[0]?.n ?? 0) > 0 ? Number(rows[0]?.w) : null;
    });
  }

  /** Which of `ids` are messages of the live already. */
  async idsOfLive(liveId: string, ids: readonly string[], chunk = 1000): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += chunk) {
      const part = ids.slice(i, i + chunk);
      const rows = await this.read(async () => {
        const [result] = await this.pool.query<RowDataPacket[]>({ sql: 'SELECT id FROM messages WHERE live_id = ? AND id IN (?)', timeout: this.queryTimeoutMs }, [liveId, part]);
        return result;
      });
      for (const r of rows) found.add(String(r.id));
    }
    return found;
  }

  /** The offset of a live's latest archived message (imported ones may lie past its end); null when it has none. */
  async lastOffset(liveId: string): Promise<number | null> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>({ sql: 'SELECT MAX(offset_ms) AS o FROM messages WHERE live_id = ?', timeout: this.queryTimeoutMs }, [liveId]);
      const o = rows[0]?.o;
      return o === null || o === undefined ? null : Number(o);
    });
  }

  async countLive(liveId: string): Promise<number> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM messages WHERE live_id = ?', [liveId]);
      return Number(rows[0]?.n ?? 0);
    });
  }

  async recordLiveStart(live: LiveRecord, startedBy: string): Promise<void> {
    await this.read(() =>
      this.pool.query('INSERT INTO lives (live_id, room_id, started_at, ended_at, started_by, playback_url) VALUES (?, ?, ?, NULL, ?, ?)', [
        live.liveId,
        live.roomId,
        live.startedAt,
        startedBy,
        live.playbackUrl ?? null,
      ]),
    );
  }

  /** Sets the fields given; returns the record as stored, null when unknown. */
  async setLiveUrls(liveId: string, urls: LiveUrls): Promise<LiveRecord | null> {
    const sets: string[] = [];
    const values: (string | null)[] = [];
    if (urls.playbackUrl !== undefined) {
      sets.push('playback_url = ?');
      values.push(urls.playbackUrl);
    }
    if (urls.recordingUrl !== undefined) {
      sets.push('recording_url = ?');
      values.push(urls.recordingUrl);
    }
    if (sets.length > 0) await this.read(() => this.pool.query(`UPDATE lives SET ${sets.join(', ')} WHERE live_id = ?`, [...values, liveId]));
    return this.live(liveId);
  }

  /** Sets ended_at unless it is set already; returns the record as stored, null when unknown. */
  async recordLiveEnd(liveId: string, endedAt: number): Promise<LiveRecord | null> {
    await this.read(() => this.pool.query('UPDATE lives SET ended_at = ? WHERE live_id = ? AND ended_at IS NULL', [endedAt, liveId]));
    return this.live(liveId);
  }

  /** Removes a live that could not be started (its Redis state was refused). */
  async forgetLive(liveId: string): Promise<void> {
    await this.read(() => this.pool.query('DELETE FROM lives WHERE live_id = ? AND ended_at IS NULL', [liveId]));
  }

  async live(liveId: string): Promise<LiveRecord | null> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        { sql: `SELECT ${LIVE_COLUMNS} FROM lives WHERE live_id = ?`, timeout: this.queryTimeoutMs },
        [liveId],
      );
      const r = rows[0];
      return r ? toLiveRecord(r) : null;
    });
  }

  /** A room's lives, newest first. */
  async livesOf(roomId: string, limit: number): Promise<LiveRecord[]> {
    return this.read(async () => {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        { sql: `SELECT ${LIVE_COLUMNS} FROM lives WHERE room_id = ? ORDER BY started_at DESC LIMIT ?`, timeout: this.queryTimeoutMs },
        [roomId, limit],
      );
      return rows.map(toLiveRecord);
    });
  }

  /**
   * Tombstones a message so replay never shows it again, and says where it was archived (if it
   * was already) so the caches of that live can be dropped.
   */
  async tombstone(roomId: string, id: string, deletedBy: string, now = Date.now()): Promise<{ liveId: string | null; offsetMs: number | null }> {
    return this.read(async () => {
      await this.pool.query('INSERT IGNORE INTO deleted_messages (room_id, id, deleted_by, deleted_at) VALUES (?, ?, ?, ?)', [roomId, id, deletedBy, now]);
      const [rows] = await this.pool.query<RowDataPacket[]>('SELECT live_id, offset_ms FROM messages WHERE id = ? AND room_id = ?', [id, roomId]);
      const r = rows[0];
      if (!r || r.live_id === '') return { liveId: null, offsetMs: null };
      return { liveId: String(r.live_id), offsetMs: Number(r.offset_ms) };
    });
  }

  /** MySQL answers: for /readyz. */
  async ping(): Promise<boolean> {
    try {
      await this.pool.query({ sql: 'SELECT 1', timeout: 1000 });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  /** A client-facing statement: schema ensured, and MySQL trouble becomes a fast 503. */
  private read<T>(call: () => Promise<T>): Promise<T> {
    return guardMysql(async () => {
      await this.ready();
      return call();
    });
  }
}
