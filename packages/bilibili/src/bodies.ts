import { hash32 } from '@danmaku/model';
import type { Message } from '@danmaku/protocol';

/**
 * Message bodies (op 5, JSON with a `cmd`) in the shapes common clients parse. Fields they read
 * are always present, with neutral values where this system has nothing to say: a missing field
 * makes some parsers throw.
 */

/** Bilibili's comment modes: 1 scroll, 4 bottom, 5 top. */
export const MODE_NUMBER = { scroll: 1, bottom: 4, top: 5 } as const;
const WHITE = 0xffffff;
const FONT_SIZE = 25;

/** Clients expect numeric uids; ours are strings, so a non-numeric id maps to a stable number. */
export function numericUid(id: string): number {
  return /^[1-9][0-9]{0,14}$/.test(id) ? Number(id) : hash32(id);
}

/** `#RRGGBB` -> the decimal RGB number Bilibili uses; white when absent or not a colour. */
export function colorNumber(color: string | undefined): number {
  return color && /^#[0-9a-fA-F]{6}$/.test(color) ? parseInt(color.slice(1), 16) : WHITE;
}

export function modeNumber(mode: string | undefined): number {
  return mode === 'top' || mode === 'bottom' || mode === 'scroll' ? MODE_NUMBER[mode] : MODE_NUMBER.scroll;
}

type StyledMessage = Message & { color?: string; mode?: string };

export function danmuMsg(m: StyledMessage): Record<string, unknown> {
  const uid = numericUid(m.user.id);
  const mode = modeNumber(m.mode);
  const color = colorNumber(m.color);
  const text = m.content ?? '';
  const extra = JSON.stringify({
    send_from_me: false,
    mode: 0,
    color,
    dm_type: 0,
    font_size: FONT_SIZE,
    content: text,
    id_str: m.id,
    // This system's own fields, for tools that know them.
    danmaku: { id: m.id, roomId: m.roomId, userId: m.user.id, seq: m.seq, ...(m.color ? { color: m.color } : {}), ...(m.mode ? { mode: m.mode } : {}) },
  });
  const info0 = [0, mode, FONT_SIZE, color, m.ts, Math.floor(m.ts / 1000), 0, m.id, 0, 0, 0, '', 0, '{}', '{}', { mode: 0, show_player_type: 0, extra }, { activity_identity: '', activity_source: 0, not_show: 0 }, 0];
  const info = [
    info0,
    text,
    [uid, m.user.name, 0, 0, 0, 10000, 1, ''],
    [],
    [0, 0, 9868950, '>50000', 0],
    ['', ''],
    0,
    0,
    null,
    { ts: Math.floor(m.ts / 1000), ct: '' },
    0,
    0,
    null,
    null,
    0,
    7,
    [0],
  ];
  return { cmd: 'DANMU_MSG', info, dm_v2: '' };
}

/** Gift ids are names here ("rose"); clients want a number, so one is derived. */
export function sendGift(m: Message): Record<string, unknown> {
  const giftId = m.gift?.giftId ?? 'gift';
  const num = m.gift?.count ?? 1;
  const seconds = Math.floor(m.ts / 1000);
  return {
    cmd: 'SEND_GIFT',
    data: {
      giftName: giftId,
      num,
      uname: m.user.name,
      face: '',
      guard_level: 0,
      uid: numericUid(m.user.id),
      timestamp: seconds,
      giftId: /^[0-9]{1,9}$/.test(giftId) ? Number(giftId) : hash32(giftId) % 1_000_000,
      giftType: 0,
      gift_info: { img_basic: '', webp: '' },
      action: '投喂',
      price: 0,
      rnd: String(m.ts),
      coin_type: 'silver',
      total_coin: 0,
      tid: m.id,
      medal_info: null,
      blind_gift: null,
      batch_combo_id: '',
      danmaku: { id: m.id, giftId, userId: m.user.id },
    },
  };
}

export function interactWord(m: Message, roomid: number): Record<string, unknown> {
  return {
    cmd: 'INTERACT_WORD',
    data: {
      uid: numericUid(m.user.id),
      uname: m.user.name,
      msg_type: 1,
      roomid,
      timestamp: Math.floor(m.ts / 1000),
      trigger_time: m.ts * 1_000_000,
      fans_medal: null,
      identities: [1],
    },
  };
}

export const likeInfo = (total: number): Record<string, unknown> => ({ cmd: 'LIKE_INFO_V3_UPDATE', data: { click_count: total } });

export const onlineRankCount = (count: number): Record<string, unknown> => ({ cmd: 'ONLINE_RANK_COUNT', data: { count, count_text: String(count), online_count: count } });

export const watchedChange = (num: number): Record<string, unknown> => ({ cmd: 'WATCHED_CHANGE', data: { num, text_small: String(num), text_large: `${num}人看过` } });

export const liveStart = (roomid: number, startedAtMs: number): Record<string, unknown> => ({
  cmd: 'LIVE',
  roomid,
  live_time: Math.floor(startedAtMs / 1000),
  live_platform: 'pc',
});

/** `roomid` is a string in PREPARING (as Bilibili sends it). */
export const preparing = (roomid: number): Record<string, unknown> => ({ cmd: 'PREPARING', roomid: String(roomid) });

/** Pinned notices and other system messages. */
export function notice(m: Message, roomid: number): Record<string, unknown> {
  const text = m.content ?? '';
  return {
    cmd: 'NOTICE_MSG',
    id: 0,
    name: 'notice',
    full: {},
    half: {},
    side: {},
    roomid,
    real_roomid: roomid,
    msg_common: text,
    msg_self: text,
    link_url: '',
    msg_type: 1,
    data: { id: m.id, text },
  };
}

/**
 * A moderator's delete. JavaScript clients treat every cmd containing "DANMU_MSG" as a comment
 * and read info[1], so the cmd must not contain it.
 */
/** A user blocked in the room (Bilibili's ROOM_BLOCK_MSG); sent to that user's connection before it closes. */
export const roomBlock = (uid: number, uname: string, reason: string): Record<string, unknown> => ({ cmd: 'ROOM_BLOCK_MSG', uid, uname, data: { uid, uname, operator: 2, reason } });

export const messagesDeleted = (roomid: number, ids: readonly string[]): Record<string, unknown> => ({ cmd: 'DANMAKU_DELETE', data: { roomid, ids } });

/** The body for one stored message; null for types that have no Bilibili form (likes are totals). */
export function messageBody(m: Message, roomid: number): Record<string, unknown> | null {
  switch (m.type) {
    case 'comment':
      return danmuMsg(m);
    case 'gift':
      return sendGift(m);
    case 'enter':
      return interactWord(m, roomid);
    case 'system':
      return notice(m, roomid);
    default:
      return null;
  }
}
