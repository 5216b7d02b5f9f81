/**
 * Once each, in order: both transports, a reconnect's catch-up and a poll overlapping a push can
 * bring the same message twice or out of order. Delivery drops what was delivered (by id, and by
 * seq per type) and orders the rest by seq per type. The newest seqs are also where the client
 * resumes, so they make its cursor.
 */
import { decodeCursor, encodeCursor, type Cursor, type Message } from '@danmaku/protocol';

/** Ids remembered for dedup; older ones are also behind the seqs, which catch them. */
const SEEN_IDS = 5000;

export class Delivery {
  private readonly seqs: Cursor = {};
  /** Insertion-ordered, so the oldest id is the first to forget. */
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = SEEN_IDS) {}

  /** The newest seq delivered per type, as the server's opaque cursor. */
  get cursor(): string | undefined {
    return Object.keys(this.seqs).length > 0 ? encodeCursor(this.seqs) : undefined;
  }

  /** The server says the client is at least this far (a join's or a poll's cursor). */
  advance(text: string): void {
    const cursor = decodeCursor(text);
    // Not a cursor we understand: keep our own seqs.
    if (!cursor) return;
    for (const [type, seq] of Object.entries(cursor) as [keyof Cursor, number][]) {
      if (seq > (this.seqs[type] ?? 0)) this.seqs[type] = seq;
    }
  }

  /**
   * The server answered `skipped` with this cursor. Where it is behind ours, the room's stream
   * started again below us (its live state expired after a quiet spell, or the store was reset):
   * our floor for that type goes back, so the new messages are not taken for old ones. Ids already
   * delivered stay known.
   */
  rewind(text: string): void {
    const cursor = decodeCursor(text);
    if (!cursor) return;
    for (const [type, seq] of Object.entries(cursor) as [keyof Cursor, number][]) {
      if (seq < (this.seqs[type] ?? 0)) this.seqs[type] = 0;
    }
  }

  /** Returns the messages not delivered before, in seq order per type, and records them as delivered. */
  accept(messages: readonly Message[]): Message[] {
    if (messages.length === 0) return [];
    const sorted = [...messages].sort((a, b) => (a.type === b.type ? a.seq - b.seq : a.type < b.type ? -1 : 1));
    const out: Message[] = [];
    for (const m of sorted) {
      if (this.seen.has(m.id) || m.seq <= (this.seqs[m.type] ?? 0)) continue;
      this.seqs[m.type] = m.seq;
      this.seen.add(m.id);
      if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value as string);
      out.push(m);
    }
    return out;
  }
}
