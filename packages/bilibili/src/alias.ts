import { aliasKeys } from '@danmaku/store';
/**
 * Numeric aliases: Bilibili clients pick a room by a number, so a room whose id is not a number
 * gets one from its streamer. Two keys: alias -> room (what a client's roomid resolves through)
 * and room -> alias (what the room shows). They sit in different hash slots, so they are written
 * one after the other; the alias -> room key is the one that decides.
 */
export interface AliasRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, nx: 'NX'): Promise<string | null>;
  set(key: string, value: string): Promise<string | null>;
  del(...keys: string[]): Promise<number>;
}

export { aliasKeys };

export const MAX_ALIAS = 2 ** 31 - 1;

export type SetAliasResult = { ok: true; alias: number | null } | { ok: false; takenBy: string };

/** Gives `roomId` the alias (null removes it). Refuses an alias another room holds. */
export async function setAlias(redis: AliasRedis, roomId: string, alias: number | null): Promise<SetAliasResult> {
  const previous = await redis.get(aliasKeys.alias(roomId));
  if (alias !== null) {
    const claimed = await redis.set(aliasKeys.room(alias), roomId, 'NX');
    if (claimed === null) {
      const holder = await redis.get(aliasKeys.room(alias));
      if (holder !== roomId && holder !== null) return { ok: false, takenBy: holder };
      if (holder === null) await redis.set(aliasKeys.room(alias), roomId);
    }
    await redis.set(aliasKeys.alias(roomId), String(alias));
  } else {
    await redis.del(aliasKeys.alias(roomId));
  }
  if (previous !== null && previous !== String(alias)) {
    // Only drop the old alias if it still points here.
    const holder = await redis.get(aliasKeys.room(Number(previous)));
    if (holder === roomId) await redis.del(aliasKeys.room(Number(previous)));
  }
  return { ok: true, alias };
}

export async function aliasOf(redis: AliasRedis, roomId: string): Promise<number | null> {
  const text = await redis.get(aliasKeys.alias(roomId));
  return text === null ? null : Number(text);
}

/** The room a Bilibili `roomid` picks: an alias when one is set, else the room whose id is that number. */
export async function resolveRoomid(redis: AliasRedis, roomid: number): Promise<string> {
  return (await redis.get(aliasKeys.room(roomid))) ?? String(roomid);
}
