import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import type { Message } from '@danmaku/protocol';
import {
  AUTH_OK,
  HEADER_LENGTH,
  MAX_CLIENT_PACKET,
  Op,
  PacketStream,
  ProtocolError,
  Ver,
  colorNumber,
  danmuMsg,
  decodeServerPackets,
  encodeMessages,
  encodePacket,
  heartbeatReply,
  interactWord,
  messageBody,
  messagesDeleted,
  parseAuth,
  preparing,
  sendGift,
  splitPackets,
} from '../src/index.js';

const comment: Message & { color?: string; mode?: 'top' } = {
  id: 'm1',
  roomId: '42',
  type: 'comment',
  seq: 7,
  ts: 1_700_000_000_123,
  user: { id: 'u-ann', name: 'Ann' },
  content: 'hello',
  color: '#FF8000',
  mode: 'top',
};

describe('packets', () => {
  it('encodes the 16-byte big-endian header and splits frames holding several packets', () => {
    const a = encodePacket(Op.HEARTBEAT, Ver.BINARY, '[object Object]');
    assert.equal(a.readUInt32BE(0), HEADER_LENGTH + 15);
    assert.equal(a.readUInt16BE(4), 16);
    assert.equal(a.readUInt16BE(6), 1);
    assert.equal(a.readUInt32BE(8), 2);
    assert.equal(a.readUInt32BE(12), 1);
    const b = encodePacket(Op.AUTH, Ver.BINARY, '{"roomid":1}');
    const packets = splitPackets(Buffer.concat([a, b]));
    assert.deepEqual(packets.map((p) => p.op), [2, 7]);
    assert.equal(packets[1]?.body.toString(), '{"roomid":1}');
  });

  it('refuses lengths that do not add up, short or huge lengths, and bad header lengths', () => {
    const good = encodePacket(Op.HEARTBEAT, Ver.BINARY);
    const cases: Buffer[] = [
      good.subarray(0, 10), // shorter than a header
      Buffer.concat([good, Buffer.from([1, 2, 3])]), // trailing bytes
      (() => { const p = Buffer.from(good); p.writeUInt32BE(40, 0); return p; })(), // runs past the end
      (() => { const p = Buffer.from(good); p.writeUInt32BE(8, 0); return p; })(), // shorter than its header
      (() => { const p = Buffer.from(good); p.writeUInt32BE(0x80000000, 0); return p; })(), // 2 GB
      (() => { const p = Buffer.from(good); p.writeUInt16BE(12, 4); return p; })(), // header length 12
      encodePacket(Op.AUTH, Ver.BINARY, Buffer.alloc(MAX_CLIENT_PACKET)), // over the sane size
    ];
    for (const [i, buf] of cases.entries()) assert.throws(() => splitPackets(buf), ProtocolError, `case ${i}`);
  });

  it('cuts a TCP stream into packets however it is chunked, and fails a bad header at once', () => {
    const bytes = Buffer.concat([encodePacket(Op.AUTH, Ver.BINARY, '{"roomid":5}'), encodePacket(Op.HEARTBEAT, Ver.BINARY), encodePacket(Op.HEARTBEAT, Ver.BINARY, 'x')]);
    const stream = new PacketStream();
    const got = [];
    for (const byte of bytes) got.push(...stream.push(Buffer.from([byte])));
    assert.deepEqual(got.map((p) => [p.op, p.body.toString()]), [[7, '{"roomid":5}'], [2, ''], [2, 'x']]);
    assert.equal(stream.buffered, 0);

    const huge = Buffer.alloc(16);
    huge.writeUInt32BE(2 ** 31, 0);
    huge.writeUInt16BE(16, 4);
    // Only the header has arrived; the 2 GB body never will, and nothing waits for it.
    assert.throws(() => new PacketStream().push(huge), /over the limit/);
  });

  it('merges bodies into one zlib or brotli packet, or plain packets, that decode back', () => {
    const bodies = [JSON.stringify({ cmd: 'A', n: 1 }), JSON.stringify({ cmd: 'B', n: 2 })];
    for (const protover of [0, 1, 2, 3]) {
      const packet = encodeMessages(bodies, protover);
      if (protover >= 2) {
        assert.equal(splitPackets(packet, 1 << 20).length, 1, 'one outer packet');
        assert.equal(packet.readUInt16BE(6), protover);
        assert.equal(packet.readUInt32BE(8), Op.MESSAGE);
      }
      const decoded = decodeServerPackets(packet);
      assert.deepEqual(decoded.map((p) => p.json), [{ cmd: 'A', n: 1 }, { cmd: 'B', n: 2 }], `protover ${protover}`);
      assert.ok(decoded.every((p) => p.ver === Ver.JSON && p.op === Op.MESSAGE));
    }
  });

  it('reports a truncated compressed body as a protocol error', () => {
    const inner = encodePacket(Op.MESSAGE, Ver.JSON, '{"cmd":"X"}');
    const zipped = deflateSync(inner);
    const truncated = encodePacket(Op.MESSAGE, Ver.ZLIB, zipped.subarray(0, zipped.length - 4));
    assert.throws(() => decodeServerPackets(truncated), ProtocolError);
    const brotli = encodeMessages(['{"cmd":"X"}'], 3);
    const cut = encodePacket(Op.MESSAGE, Ver.BROTLI, brotli.subarray(HEADER_LENGTH, brotli.length - 3));
    assert.throws(() => decodeServerPackets(cut), ProtocolError);
  });

  it('builds heartbeat and auth replies', () => {
    const beat = heartbeatReply(1234);
    assert.equal(beat.readUInt16BE(6), Ver.BINARY);
    assert.equal(beat.readUInt32BE(8), Op.HEARTBEAT_REPLY);
    assert.equal(beat.readUInt32BE(16), 1234);
    assert.equal(beat.length, 20);
    assert.equal(heartbeatReply(-5).readUInt32BE(16), 0);
    assert.deepEqual(decodeServerPackets(AUTH_OK)[0]?.json, { code: 0 });
  });
});

describe('auth bodies', () => {
  it('needs only a numeric roomid; key and buvid are optional, uid may be 0 or absent', () => {
    assert.deepEqual(parseAuth(Buffer.from('{"uid":0,"roomid":42,"protover":3,"platform":"web","type":2}')), { roomid: 42, uid: 0, protover: 3 });
    assert.deepEqual(parseAuth(Buffer.from('{"roomid":42}')), { roomid: 42, uid: 0, protover: 0 });
    assert.deepEqual(parseAuth(Buffer.from('{"roomid":"42","protover":2,"key":"abc","buvid":"x"}')), { roomid: 42, uid: 0, protover: 2, key: 'abc' });
    for (const bad of ['', 'garbage', '[]', 'null', '{"uid":1}', '{"roomid":-1}', '{"roomid":1.5}', '{"roomid":"abc"}', '{"roomid":1e300}']) {
      assert.equal(parseAuth(Buffer.from(bad)), null, bad);
    }
  });
});

describe('message bodies', () => {
  it('DANMU_MSG carries text, user, colour and mode where common clients read them', () => {
    const body = danmuMsg(comment) as { cmd: string; info: unknown[] };
    assert.equal(body.cmd, 'DANMU_MSG');
    assert.ok(body.info.length >= 17);
    const info0 = body.info[0] as unknown[];
    assert.ok(info0.length >= 16);
    assert.equal(info0[1], 5, 'top = 5');
    assert.equal(info0[2], 25);
    assert.equal(info0[3], 0xff8000);
    assert.equal(info0[4], comment.ts);
    assert.equal(info0[12], 0);
    const extra = JSON.parse((info0[15] as { extra: string }).extra) as { content: string; color: number };
    assert.equal(extra.content, 'hello');
    assert.equal(body.info[1], 'hello');
    const user = body.info[2] as unknown[];
    assert.equal(user.length, 8);
    assert.equal(typeof user[0], 'number');
    assert.equal(user[1], 'Ann');
    assert.deepEqual(body.info[3], []);
    assert.ok((body.info[4] as unknown[]).length >= 4);
    assert.deepEqual(body.info[9], { ts: Math.floor(comment.ts / 1000), ct: '' });
    // Defaults: scroll, white.
    const plain = danmuMsg({ ...comment, color: undefined, mode: undefined }) as { info: unknown[][] };
    assert.equal(plain.info[0]?.[1], 1);
    assert.equal(plain.info[0]?.[3], 0xffffff);
    assert.equal((danmuMsg({ ...comment, mode: 'bottom' } as never) as { info: unknown[][] }).info[0]?.[1], 4);
    assert.equal(colorNumber('#00000g'), 0xffffff);
  });

  it('gift, enter, notice, deletion and PREPARING have the fields parsers need', () => {
    const gift = sendGift({ ...comment, type: 'gift', content: undefined, gift: { giftId: 'rose', count: 3 } }) as { cmd: string; data: Record<string, unknown> };
    assert.equal(gift.cmd, 'SEND_GIFT');
    for (const field of ['giftName', 'num', 'uname', 'face', 'guard_level', 'uid', 'timestamp', 'giftId', 'giftType', 'gift_info', 'action', 'price', 'rnd', 'coin_type', 'total_coin', 'tid']) {
      assert.ok(field in gift.data, field);
    }
    assert.equal(gift.data.medal_info, null);
    assert.equal(gift.data.blind_gift, null);
    assert.equal(gift.data.num, 3);
    assert.equal(typeof gift.data.giftId, 'number');
    assert.deepEqual(Object.keys(gift.data.gift_info as object).includes('img_basic'), true);

    const enter = interactWord({ ...comment, type: 'enter' }, 42) as { data: Record<string, unknown> };
    assert.equal(enter.data.msg_type, 1);
    assert.equal(enter.data.uname, 'Ann');
    assert.equal(enter.data.timestamp, Math.floor(comment.ts / 1000));
    assert.equal(enter.data.trigger_time, comment.ts * 1_000_000);
    assert.equal(enter.data.fans_medal, null);

    assert.equal((messageBody({ ...comment, type: 'system', content: 'pinned' }, 42) as { msg_common: string }).msg_common, 'pinned');
    assert.equal(messageBody({ ...comment, type: 'like' }, 42), null);
    const deleted = messagesDeleted(42, ['m1']) as { cmd: string };
    assert.ok(!deleted.cmd.includes('DANMU_MSG'), 'clients treat any cmd containing DANMU_MSG as a comment');
    assert.deepEqual(preparing(42), { cmd: 'PREPARING', roomid: '42' });
  });
});
