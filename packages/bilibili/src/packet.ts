import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, deflateSync, inflateSync } from 'node:zlib';

/** The Bilibili live danmaku wire protocol: a 16-byte big-endian header, then the body. */
export const HEADER_LENGTH = 16;

export const Op = {
  HEARTBEAT: 2,
  HEARTBEAT_REPLY: 3,
  MESSAGE: 5,
  AUTH: 7,
  AUTH_REPLY: 8,
} as const;

export const Ver = {
  /** A JSON body. */
  JSON: 0,
  /** A binary body: auth, heartbeat and their replies. */
  BINARY: 1,
  /** zlib (RFC 1950) deflate of whole inner packets laid end to end. */
  ZLIB: 2,
  /** The same with brotli. */
  BROTLI: 3,
} as const;

/**
 * Clients only send auth and heartbeats, a few hundred bytes (the auth key is the longest part):
 * anything bigger is an error or an attack, never a real packet.
 */
export const MAX_CLIENT_PACKET = 16 * 1024;
/** What a decoder of server packets accepts (ours stay far below: a merge window of one room). */
export const MAX_SERVER_PACKET = 16 * 1024 * 1024;

export interface Packet {
  ver: number;
  op: number;
  seq: number;
  body: Buffer;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export function encodePacket(op: number, ver: number, body: Buffer | string = Buffer.alloc(0), seq = 1): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const packet = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
  packet.writeUInt32BE(HEADER_LENGTH + payload.length, 0);
  packet.writeUInt16BE(HEADER_LENGTH, 4);
  packet.writeUInt16BE(ver, 6);
  packet.writeUInt32BE(op, 8);
  packet.writeUInt32BE(seq, 12);
  payload.copy(packet, HEADER_LENGTH);
  return packet;
}

/** Reads the header at `offset`; throws on a header that cannot be right. Returns the packet length. */
function checkHeader(buffer: Buffer, offset: number, maxPacket: number): number {
  const length = buffer.readUInt32BE(offset);
  const headerLength = buffer.readUInt16BE(offset + 4);
  if (headerLength !== HEADER_LENGTH) throw new ProtocolError(`header length ${headerLength}, expected ${HEADER_LENGTH}`);
  if (length < HEADER_LENGTH) throw new ProtocolError(`packet length ${length} is shorter than its header`);
  if (length > maxPacket) throw new ProtocolError(`packet length ${length} is over the limit of ${maxPacket}`);
  return length;
}

function readPacket(buffer: Buffer, offset: number, length: number): Packet {
  return {
    ver: buffer.readUInt16BE(offset + 6),
    op: buffer.readUInt32BE(offset + 8),
    seq: buffer.readUInt32BE(offset + 12),
    body: buffer.subarray(offset + HEADER_LENGTH, offset + length),
  };
}

/**
 * Splits a buffer that must hold whole packets laid end to end (one WebSocket frame, or an
 * inflated merged body). Lengths that do not add up exactly are an error.
 */
export function splitPackets(buffer: Buffer, maxPacket = MAX_CLIENT_PACKET): Packet[] {
  const packets: Packet[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < HEADER_LENGTH) throw new ProtocolError(`${buffer.length - offset} trailing bytes are not a packet`);
    const length = checkHeader(buffer, offset, maxPacket);
    if (offset + length > buffer.length) throw new ProtocolError(`packet length ${length} runs past the end of the frame`);
    packets.push(readPacket(buffer, offset, length));
    offset += length;
  }
  return packets;
}

/**
 * Cuts a byte stream (TCP) into packets. A header is checked as soon as it is complete, so a
 * bad or huge length fails at once instead of waiting for bytes that never come.
 */
export class PacketStream {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPacket = MAX_CLIENT_PACKET) {}

  push(chunk: Buffer): Packet[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const packets: Packet[] = [];
    let offset = 0;
    while (this.pending.length - offset >= HEADER_LENGTH) {
      const length = checkHeader(this.pending, offset, this.maxPacket);
      if (this.pending.length - offset < length) break;
      packets.push(readPacket(this.pending, offset, length));
      offset += length;
    }
    // Copy the rest: a subarray would keep the whole chunk alive for a few bytes.
    this.pending = offset === 0 ? this.pending : Buffer.from(this.pending.subarray(offset));
    return packets;
  }

  /** Bytes waiting for the rest of their packet. */
  get buffered(): number {
    return this.pending.length;
  }
}

/** Brotli at a low quality: the merge window's packet is compressed for every room, often. */
const BROTLI_OPTIONS = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4, [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT } };

/**
 * One packet carrying several JSON message bodies for a client of `protover`: 3 brotli, 2 zlib
 * (each one op 5 packet wrapping the inner ver 0 packets), otherwise the plain ver 0 packets
 * laid end to end (one frame may hold several packets).
 */
export function encodeMessages(bodies: readonly (string | Buffer)[], protover: number): Buffer {
  const inner = Buffer.concat(bodies.map((body) => encodePacket(Op.MESSAGE, Ver.JSON, body)));
  if (protover === Ver.BROTLI) return encodePacket(Op.MESSAGE, Ver.BROTLI, brotliCompressSync(inner, BROTLI_OPTIONS));
  if (protover === Ver.ZLIB) return encodePacket(Op.MESSAGE, Ver.ZLIB, deflateSync(inner));
  return inner;
}

/**
 * Decodes what a server sent (tests, the bench): inner packets of merged ones are unpacked, and
 * op 5 JSON bodies parsed. Throws ProtocolError on anything malformed.
 */
export function decodeServerPackets(buffer: Buffer): Array<Packet & { json?: unknown; count?: number }> {
  const out: Array<Packet & { json?: unknown; count?: number }> = [];
  for (const packet of splitPackets(buffer, MAX_SERVER_PACKET)) {
    if (packet.ver === Ver.ZLIB || packet.ver === Ver.BROTLI) {
      let inner: Buffer;
      try {
        inner = packet.ver === Ver.ZLIB ? inflateSync(packet.body, { maxOutputLength: MAX_SERVER_PACKET }) : brotliDecompressSync(packet.body, { maxOutputLength: MAX_SERVER_PACKET });
      } catch (err) {
        throw new ProtocolError(`compressed body does not decompress: ${(err as Error).message}`);
      }
      out.push(...decodeServerPackets(inner));
    } else if (packet.ver === Ver.JSON) {
      let json: unknown;
      try {
        json = JSON.parse(packet.body.toString('utf8'));
      } catch {
        throw new ProtocolError('a ver 0 body is not JSON');
      }
      out.push({ ...packet, json });
    } else if (packet.op === Op.HEARTBEAT_REPLY && packet.body.length === 4) {
      out.push({ ...packet, count: packet.body.readUInt32BE(0) });
    } else if (packet.op === Op.AUTH_REPLY) {
      out.push({ ...packet, json: JSON.parse(packet.body.toString('utf8')) as unknown });
    } else {
      out.push(packet);
    }
  }
  return out;
}

export const heartbeatReply = (online: number): Buffer => {
  const body = Buffer.allocUnsafe(4);
  body.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(online))), 0);
  return encodePacket(Op.HEARTBEAT_REPLY, Ver.BINARY, body);
};

export const AUTH_OK = encodePacket(Op.AUTH_REPLY, Ver.BINARY, '{"code":0}');
export const AUTH_REFUSED = encodePacket(Op.AUTH_REPLY, Ver.BINARY, '{"code":-101}');
