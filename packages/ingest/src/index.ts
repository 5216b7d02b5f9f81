import type { Principal } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import {
  ApiError,
  clientMessageId,
  newMessageId,
  partitionFor,
  streamKey,
  type SendMessageBody,
  type UnsequencedMessage,
} from '@danmaku/model';
import { counter, gauge } from '@danmaku/observability';

const ingested = counter<'type'>({ name: 'danmaku_ingest_total', help: 'Messages accepted onto the bus', labelNames: ['type'] });
const inFlightGauge = gauge({ name: 'danmaku_ingest_in_flight', help: 'Produces waiting for the bus to acknowledge them' });
const shed = counter({ name: 'danmaku_ingest_shed_total', help: 'Sends refused with 503 overloaded because too many produces were in flight' });

/**
 * A check every send passes before it is accepted (moderation, rate limits, read-only rooms).
 * Throws an ApiError to refuse; may return a changed message (e.g. a word filter replacing text).
 */
export type SendCheck = (
  message: UnsequencedMessage,
  principal: Principal,
  context?: SendContext,
) => Promise<UnsequencedMessage | void> | UnsequencedMessage | void;

/** Where a send came from, beyond the token: what per-client checks (rate limit by IP) need. */
export interface SendContext {
  /** The client address (HTTP: request.ip; socket.io: handshake.address). */
  ip?: string;
}

export interface IngestOptions {
  bus: Bus;
  topic: string;
  /** Run in order before the message goes on the bus. */
  checks?: SendCheck[];
  /**
   * Most produces waiting for the bus at once; past it a send answers 503 `overloaded` with
   * Retry-After at once, instead of queueing without bound while the bus is slow. 0 = no cap.
   */
  maxInFlight?: number;
  /** Picks the partition; the default keeps every (room, type) on one partition (gear 1). */
  partition?: (key: string, message: UnsequencedMessage) => number;
}

/** Shapes a validated send body into a message: the checks the JSON schema cannot express. */
export function buildMessage(roomId: string, body: SendMessageBody, user: { id: string; name: string }, now = Date.now()): UnsequencedMessage {
  const id = body.clientMsgId ? clientMessageId(roomId, user.id, body.clientMsgId) : newMessageId(now);
  const base = { id, roomId, type: body.type, ts: now, user: { id: user.id, name: user.name } };
  if (body.type === 'comment') {
    const content = body.content?.trim() ?? '';
    if (content.length === 0) throw new ApiError(400, 'invalid_request', 'A comment needs "content" with some text.');
    if (body.giftId !== undefined || body.count !== undefined) {
      throw new ApiError(400, 'invalid_request', '"giftId" and "count" are only for gifts.');
    }
    return { ...base, content };
  }
  if (!body.giftId) throw new ApiError(400, 'invalid_request', 'A gift needs "giftId".');
  if (body.content !== undefined) throw new ApiError(400, 'invalid_request', '"content" is only for comments.');
  return { ...base, gift: { giftId: body.giftId, count: body.count ?? 1 } };
}

/**
 * The write path shared by every surface that accepts messages (HTTP front, socket.io connector):
 * shape -> checks -> stamp -> produce keyed by (room, type). Resolves once the bus accepted it,
 * which is when a sender may be told 202.
 */
export function createIngest(options: IngestOptions) {
  const checks = options.checks ?? [];
  const maxInFlight = options.maxInFlight ?? 0;
  let inFlight = 0;
  const pickPartition = options.partition ?? ((key: string) => partitionFor(key, options.bus.partitions));

  async function accept(roomId: string, body: SendMessageBody, principal: Principal, context: SendContext = {}): Promise<{ id: string; ts: number }> {
    let message = buildMessage(roomId, body, principal);
    for (const check of checks) message = (await check(message, principal, context)) ?? message;
    await publish(message);
    return { id: message.id, ts: message.ts };
  }

  /** Puts a message the system made (enter, system notice) on the bus, skipping viewer checks. */
  async function publish(message: UnsequencedMessage): Promise<void> {
    if (maxInFlight > 0 && inFlight >= maxInFlight) {
      shed.inc();
      throw new ApiError(503, 'overloaded', 'The server is taking in messages more slowly than they arrive; try again in a moment.', 1);
    }
    const key = streamKey(message.roomId, message.type);
    inFlight++;
    inFlightGauge.inc();
    try {
      await options.bus.produce(options.topic, [{ key, value: JSON.stringify(message), partition: pickPartition(key, message) }]);
    } finally {
      inFlight--;
      inFlightGauge.dec();
    }
    ingested.inc({ type: message.type });
  }

  return { accept, publish, checks, inFlight: () => inFlight };
}

export type Ingest = ReturnType<typeof createIngest>;
