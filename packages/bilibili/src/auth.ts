/** The auth packet's body (op 7, ver 1): `{uid, roomid, protover, platform, type, key?, buvid?}`. */
export interface AuthBody {
  roomid: number;
  uid: number;
  protover: 0 | 1 | 2 | 3;
  /** A token of this system when the client passed one; never required. */
  key?: string;
}

/**
 * Reads an auth body; null when it is not one. Only `roomid` is required: clients fill uid, key
 * and buvid with values from elsewhere or leave them out, so those are never checked here.
 */
export function parseAuth(body: Buffer): AuthBody | null {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const o = json as Record<string, unknown>;
  // A few clients send the room id as a string of digits; it is the same room.
  const roomid = typeof o.roomid === 'string' && /^[0-9]{1,15}$/.test(o.roomid) ? Number(o.roomid) : o.roomid;
  if (typeof roomid !== 'number' || !Number.isSafeInteger(roomid) || roomid < 0) return null;
  const uid = typeof o.uid === 'number' && Number.isFinite(o.uid) ? o.uid : 0;
  const protover = o.protover === 1 || o.protover === 2 || o.protover === 3 ? o.protover : 0;
  const auth: AuthBody = { roomid, uid, protover };
  if (typeof o.key === 'string' && o.key.length > 0) auth.key = o.key;
  return auth;
}
