import { isMessageType, type MessageType } from './message.js';

/** The newest seq a client has seen, per type. Clients treat the encoded form as opaque. */
export type Cursor = Partial<Record<MessageType, number>>;

export function encodeCursor(cursor: Cursor): string {
  const parts: string[] = [];
  for (const [type, seq] of Object.entries(cursor)) parts.push(`${type}.${seq}`);
  return Buffer.from(parts.join(','), 'utf8').toString('base64url');
}

/** Returns null when the text is not a cursor this server made. */
export function decodeCursor(text: string): Cursor | null {
  if (text.length === 0 || text.length > 512 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const plain = Buffer.from(text, 'base64url').toString('utf8');
  const cursor: Cursor = {};
  for (const part of plain.split(',')) {
    const dot = part.indexOf('.');
    if (dot <= 0) return null;
    const type = part.slice(0, dot);
    const seqText = part.slice(dot + 1);
    if (!isMessageType(type) || !/^\d{1,15}$/.test(seqText)) return null;
    cursor[type] = Number(seqText);
  }
  return cursor;
}
