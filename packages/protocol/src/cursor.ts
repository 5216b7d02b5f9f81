import { isMessageType, type MessageType } from './message.js';

/** The newest seq a client has seen, per type. Clients treat the encoded form as opaque. */
export type Cursor = Partial<Record<MessageType, number>>;

/**
 * base64url of `type.seq,type.seq`. The text is ASCII by construction (message types and
 * digits), so btoa/atob, which browsers and Node both have, encode it byte for byte.
 */
export function encodeCursor(cursor: Cursor): string {
  const parts: string[] = [];
  for (const [type, seq] of Object.entries(cursor)) parts.push(`${type}.${seq}`);
  return btoa(parts.join(',')).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Returns null when the text is not a cursor this server made. */
export function decodeCursor(text: string): Cursor | null {
  if (text.length === 0 || text.length > 512 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const plain = fromBase64Url(text);
  if (plain === null) return null;
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

function fromBase64Url(text: string): string | null {
  // A lone trailing character holds no whole byte: dropped, as Node's Buffer does, so a cursor
  // reads the same whichever decoder a server used before.
  const whole = text.length % 4 === 1 ? text.slice(0, -1) : text;
  try {
    return atob(whole.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    return null;
  }
}
