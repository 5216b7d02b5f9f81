import type { Principal } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import { ApiError, clientMessageId, newMessageId, partitionFor, streamKey, type SendCheck, type SendContext, type UnsequencedMessage } from '@danmaku/model';
import type { SendMessageBody } from '@danmaku/protocol';
import { counter, gauge, histogram } from '@danmaku/observability';

const ingested = counter<'type'>({ name: 'danmaku_ingest_total', help: 'Messages accepted onto the bus', labelNames: ['type'] });
const inFlightGauge = gauge({ name: 'danmaku_ingest_in_flight', help: 'Produces waiting for the bus to acknowledge them' });
const STAGE_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const produceSeconds = histogram({ name: 'danmaku_ingest_produce_seconds', help: 'One produce: handed to the bus to acknowledged by it (Kafka: by every in-sync replica)', buckets: STAGE_BUCKETS });
const ackedDelay = histogram({ name: 'danmaku_ingest_acked_delay_seconds', help: 'Message ts (front receive) to acknowledged by the bus: the checks and the produce', buckets: STAGE_BUCKETS });
const shed = counter({ name: 'danmaku_ingest_shed_total', help: 'Sends refused with 503 overloaded because too many produces were in flight' });

export interface SendPipelineOptions {
  bus: Bus;
  topic: string;
  /** What a viewer's send passes, in order, before it goes on the bus. */
  checks: SendCheck[];
  /**
   * What a message posted in the room's name passes (a streamer's pinned notice): the rules on
   * its text and the live stamp, not the viewer's limits (rate, slow mode, read-only).
   */
  systemChecks: SendCheck[];
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
    return { ...base, content, ...(body.color ? { color: body.color } : {}), ...(body.mode ? { mode: body.mode } : {}) };
  }
  if (body.color !== undefined || body.mode !== undefined) throw new ApiError(400, 'invalid_request', '"color" and "mode" are only for comments.');
  if (!body.giftId) throw new ApiError(400, 'invalid_request', 'A gift needs "giftId".');
  if (body.content !== undefined) throw new ApiError(400, 'invalid_request', '"content" is only for comments.');
  return { ...base, gift: { giftId: body.giftId, count: body.count ?? 1 } };
}

async function pass(checks: readonly SendCheck[], message: UnsequencedMessage, principal: Principal, context: SendContext): Promise<UnsequencedMessage> {
  for (const check of checks) message = (await check(message, principal, context)) ?? message;
  return message;
}

/**
 * The one way messages get on the bus, for every surface (HTTP front, socket.io connector):
 * shape -> checks -> produce keyed by (room, type). Each method resolves once the bus accepted the
 * message, which is when a sender may be told 202.
 */
export function createSendPipeline(options: SendPipelineOptions) {
  const pickPartition = options.partition ?? ((key: string) => partitionFor(key, options.bus.partitions));
  const maxInFlight = options.maxInFlight ?? 0;
  let inFlight = 0;
  let draining = false;
  /** Sends taken in and not yet answered (checks and produce): what a drain waits for. */
  let taken = 0;
  let drained: Promise<void> | null = null;
  let idle: (() => void) | null = null;

  /** Runs one send unless draining; a drain waits for it to settle, so its answer is owed and given. */
  async function admit<T>(send: () => Promise<T>): Promise<T> {
    refuseWhileDraining();
    taken++;
    try {
      return await send();
    } finally {
      taken--;
      if (taken === 0 && idle) {
        idle();
        idle = null;
      }
    }
  }

  /** Puts a finished message on the bus. Checks are the caller's business: see accept, system and enter. */
  async function publish(message: UnsequencedMessage): Promise<void> {
    if (maxInFlight > 0 && inFlight >= maxInFlight) {
      shed.inc();
      throw new ApiError(503, 'overloaded', 'The server is taking in messages more slowly than they arrive; try again in a moment.', 1);
    }
    const key = streamKey(message.roomId, message.type);
    inFlight++;
    inFlightGauge.inc();
    const started = performance.now();
    try {
      await options.bus.produce(options.topic, [{ key, value: JSON.stringify(message), partition: pickPartition(key, message) }]);
      produceSeconds.observe((performance.now() - started) / 1000);
      ackedDelay.observe((Date.now() - message.ts) / 1000);
    } finally {
      inFlight--;
      inFlightGauge.dec();
    }
    ingested.inc({ type: message.type });
  }

  function refuseWhileDraining(): void {
    if (draining) throw new ApiError(503, 'draining', 'This server is shutting down and takes no new messages; send again (to another server behind the same address).', 1);
  }

  /**
   * A deploy (SIGTERM): every send from now on is refused with 503 `draining` (Retry-After 1), and
   * this resolves once the sends already taken in are acknowledged by the bus or refused, so each
   * gets its answer before the process closes its server and its bus.
   */
  function drain(): Promise<void> {
    draining = true;
    if (taken === 0) return Promise.resolve();
    drained ??= new Promise<void>((resolve) => {
      idle = resolve;
    });
    return drained;
  }

  /** A viewer's send (comment or gift), through every check. */
  function accept(roomId: string, body: SendMessageBody, principal: Principal, context: SendContext = {}): Promise<{ id: string; ts: number }> {
    // Refused before the checks while draining: a refused send does not spend the sender's rate limit.
    return admit(async () => {
      const message = await pass(options.checks, buildMessage(roomId, body, principal), principal, context);
      await publish(message);
      return { id: message.id, ts: message.ts };
    });
  }

  /** A system message posted by `principal` (a streamer or admin) into the room; returns it as published. */
  function system(roomId: string, content: string, principal: Principal, now = Date.now()): Promise<UnsequencedMessage> {
    return admit(async () => {
      const draft: UnsequencedMessage = { id: newMessageId(now), roomId, type: 'system', ts: now, user: { id: principal.id, name: principal.name }, content };
      const message = await pass(options.systemChecks, draft, principal, {});
      await publish(message);
      return message;
    });
  }

  /** "X joined": no checks (entering the room was checked) and no stamp; the caller decides whether to post one. */
  function enter(roomId: string, user: { id: string; name: string }, now = Date.now()): Promise<UnsequencedMessage> {
    return admit(async () => {
      const message: UnsequencedMessage = { id: newMessageId(now), roomId, type: 'enter', ts: now, user: { id: user.id, name: user.name } };
      await publish(message);
      return message;
    });
  }

  return { accept, system, enter, publish, drain, inFlight: () => inFlight, taken: () => taken };
}

export type SendPipeline = ReturnType<typeof createSendPipeline>;
