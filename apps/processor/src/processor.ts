import type { Batch, Bus, Consumer } from '@danmaku/bus';
import { ANNOUNCED_BYTES_MAX, ANNOUNCED_MESSAGES_MAX, type RoomAdvanced } from '@danmaku/push';
import { bucketOf, channels, type Signals } from '@danmaku/store';
import { parseStreamKey, partitionFor, streamKey, type UnsequencedMessage } from '@danmaku/model';
import type { MessageType } from '@danmaku/protocol';
import { counter, gauge, histogram, type Logger } from '@danmaku/observability';
import { redisSeconds, type AppendEntry, type RedisStore } from '@danmaku/store';
import { parallel, publishGear, sweepGears, type Gear } from '@danmaku/switches';
import { DEFAULT_GEAR_OPTIONS, GearBox, type GearOptions } from './gears.js';
import { StreamRetention } from './retention.js';


const stored = counter<'type'>({ name: 'danmaku_processor_stored_total', help: 'Messages numbered and stored', labelNames: ['type'] });
const duplicates = counter({ name: 'danmaku_processor_duplicates_total', help: 'Redelivered messages dropped by id' });
const poison = counter({ name: 'danmaku_processor_invalid_total', help: 'Bus records that were not messages (logged, skipped)' });
const delay = histogram<'gear'>({
  name: 'danmaku_processor_delay_seconds',
  help: 'Front receive (ts) to stored in Redis, by the gear the stream was written in',
  labelNames: ['gear'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});
const STAGE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const fetchedDelay = histogram({ name: 'danmaku_processor_fetched_delay_seconds', help: 'Front receive (ts) to handed to the processor by the bus, for the oldest message of each stream in a batch', buckets: STAGE_BUCKETS });
const announcedDelay = histogram({ name: 'danmaku_processor_announced_delay_seconds', help: 'Front receive (ts) to its room announced as advanced, for the oldest message of each batch', buckets: STAGE_BUCKETS });
const gearChanges = counter<'direction' | 'to'>({
  name: 'danmaku_processor_gear_changes_total',
  help: 'Gear changes of (room, type) streams',
  labelNames: ['direction', 'to'],
});
const streamsInGear = gauge<'gear'>({ name: 'danmaku_processor_streams_in_gear', help: 'Watched streams per gear (gear 1: hot recently)', labelNames: ['gear'] });
const appends = counter<'gear'>({ name: 'danmaku_processor_appends_total', help: 'Lua append calls, by gear', labelNames: ['gear'] });
const gearRecords = counter<'gear'>({ name: 'danmaku_processor_gear_records_total', help: 'Records written, by the gear of their stream', labelNames: ['gear'] });
const spreadRecords = counter({
  name: 'danmaku_processor_spread_records_total',
  help: 'Records consumed off their stream\'s home partition (a front spread a hot stream: gears 2 and 4)',
});
const busLag = gauge<'group'>({ name: 'danmaku_bus_lag_records', help: 'Records produced but not yet committed by the group', labelNames: ['group'] });

export interface ProcessorOptions {
  bus: Bus;
  store: RedisStore;
  topic: string;
  logger: Logger;
  /** Most messages per Lua call. */
  batchSize: number;
  /** Wait this long to fill a batch (bus lingerMs); 0 = handle what is there at once. */
  lingerMs?: number;
  /** Announces each advanced stream (the pusher listens); failures only delay pushes. */
  announce?: (events: RoomAdvanced[]) => Promise<void>;
  groupId?: string;
  /** Gear thresholds (DANMAKU_GEAR_*); the defaults otherwise. */
  gears?: Partial<GearOptions>;
}

interface Stream {
  roomId: string;
  type: MessageType;
  entries: AppendEntry[];
  oldestTs: number;
}

/** Groups a partition batch by (room, type), keeping the order within each stream. */
function groupByStream(batch: Batch, logger: Logger): Map<string, Stream> {
  const streams = new Map<string, Stream>();
  for (const record of batch.records) {
    const target = parseStreamKey(record.key);
    let message: UnsequencedMessage | null = null;
    try {
      message = JSON.parse(record.value) as UnsequencedMessage;
    } catch {
      message = null;
    }
    if (!target || !message || typeof message.id !== 'string' || message.roomId !== target.roomId) {
      // A record that can never be stored must not block its partition forever.
      poison.inc();
      logger.error({ partition: record.partition, offset: record.offset, key: record.key }, 'skipping a record that is not a message');
      continue;
    }
    let stream = streams.get(record.key);
    if (!stream) {
      stream = { ...target, entries: [], oldestTs: message.ts };
      streams.set(record.key, stream);
    }
    stream.entries.push({ id: message.id, json: record.value });
  }
  return streams;
}

/**
 * The processor role: consumes the message topic, numbers and stores each (room, type) with
 * one atomic script call per batch, announces, and only then lets the bus commit.
 */
export async function startProcessor(options: ProcessorOptions): Promise<Consumer> {
  const { store, logger, batchSize } = options;
  const groupId = options.groupId ?? 'processor';
  const gearOptions: GearOptions = { ...DEFAULT_GEAR_OPTIONS, ...options.gears };
  const retention = new StreamRetention(store.retention);
  const publish = (key: string, gear: Gear): void => {
    publishGear(store.write, key, gear).catch((err: unknown) => logger.warn({ err, key, gear }, 'could not publish a gear; retried on the next sweep'));
  };
  const gears = new GearBox(gearOptions, (key, gear, from) => {
    gearChanges.inc({ direction: gear > from ? 'up' : 'down', to: String(gear) });
    logger.info({ stream: key, from, to: gear }, 'gear change');
    publish(key, gear);
  });

  /** `added`: what was stored, as [seq, the stored JSON], for an announcement that carries it. */
  const writeStream = async (stream: Stream, gear: Gear, added: [number, string][]): Promise<number> => {
    const label = { gear: String(gear) };
    const write = async (chunk: AppendEntry[]): Promise<number> => {
      const started = performance.now();
      const key = streamKey(stream.roomId, stream.type);
      const result = await store.append(stream.roomId, stream.type, chunk, retention.of(key));
      retention.after(key, result.newestSeq);
      redisSeconds.observe({ op: 'append' }, (performance.now() - started) / 1000);
      appends.inc(label);
      gearRecords.inc(label, chunk.length);
      result.seqs.forEach((seq, i) => {
        if (seq !== null && added.length <= ANNOUNCED_MESSAGES_MAX) added.push([seq, storedJson(seq, (chunk[i] as AppendEntry).json)]);
      });
      const count = result.seqs.filter((s) => s !== null).length;
      stored.inc({ type: stream.type }, count);
      if (count < chunk.length) duplicates.inc(chunk.length - count);
      return result.newestSeq;
    };
    let newest = 0;
    if (!parallel(gear)) {
      for (let i = 0; i < stream.entries.length; i += batchSize) newest = await write(stream.entries.slice(i, i + batchSize));
      return newest;
    }
    // Gears 3 and 4: the batch is cut into up to `inFlight` calls sent together. Each call numbers
    // its messages atomically, so the calls may interleave in any order and seqs stay gap-free.
    const size = Math.max(1, Math.min(batchSize, Math.ceil(stream.entries.length / gearOptions.inFlight)));
    const chunks: AppendEntry[][] = [];
    for (let i = 0; i < stream.entries.length; i += size) chunks.push(stream.entries.slice(i, i + size));
    for (let i = 0; i < chunks.length; i += gearOptions.inFlight) {
      const seqs = await Promise.all(chunks.slice(i, i + gearOptions.inFlight).map(write));
      newest = Math.max(newest, ...seqs);
    }
    return newest;
  };

  const handle = async (batch: Batch): Promise<void> => {
    const streams = groupByStream(batch, logger);
    const events: RoomAdvanced[] = [];
    const now = Date.now();
    let oldest = now;
    for (const stream of streams.values()) {
      fetchedDelay.observe((now - stream.oldestTs) / 1000);
      oldest = Math.min(oldest, stream.oldestTs);
    }
    // Streams are independent (their own keys and seqs), so they are written concurrently;
    // within one stream the chunks go in order unless its gear allows several in flight.
    await Promise.all(
      [...streams.entries()].map(async ([key, stream]) => {
        if (partitionFor(key, options.bus.partitions) !== batch.partition) spreadRecords.inc(stream.entries.length);
        const gear = gears.observe(key, now - stream.oldestTs, now);
        const added: [number, string][] = [];
        const newest = await writeStream(stream, gear, added);
        delay.observe({ gear: String(gear) }, (Date.now() - stream.oldestTs) / 1000);
        events.push({ roomId: stream.roomId, type: stream.type, seq: newest, ...carried(added, newest) });
      }),
    );
    if (options.announce && events.length > 0) {
      const announce = options.announce;
      await announce(events).then(
        () => announcedDelay.observe((Date.now() - oldest) / 1000),
        (err: unknown) => {
          logger.warn({ err }, 'announce failed; announcing again in the background (connectors also catch up on their timer)');
          // Fronts' poll memory has no timer: an advance nobody heard would stay unseen there until
          // the room's next one. Announcing twice is harmless (listeners skip what they have).
          announceLater(announce, events, 1);
        },
      );
    }
  };

  const consumer = await options.bus.consume({ topic: options.topic, groupId, handle, maxBatch: batchSize, concurrency: options.bus.partitions, lingerMs: options.lingerMs });
  let ticks = 0;
  const tick = setInterval(() => {
    gears.sweep();
    // Renews this processor's leases; every few seconds, drops the leases nobody renewed.
    for (const [key, gear] of gears.hot()) publish(key, gear);
    if (++ticks % 5 === 0) sweepGears(store.write).catch((err: unknown) => logger.warn({ err }, 'could not sweep expired gears'));
    const counts = gears.countByGear();
    for (const [gear, n] of Object.entries(counts)) streamsInGear.set({ gear }, n);
    consumer.lag().then(
      (lag) => busLag.set({ group: groupId }, lag),
      () => undefined,
    );
  }, 1000);
  tick.unref();
  return {
    lag: () => consumer.lag(),
    async stop() {
      clearInterval(tick);
      await consumer.stop();
    },
  };
}

const ANNOUNCE_RETRIES = 5;

function announceLater(announce: (events: RoomAdvanced[]) => Promise<void>, events: RoomAdvanced[], attempt: number): void {
  if (attempt > ANNOUNCE_RETRIES) return;
  const timer = setTimeout(() => {
    announce(events).catch(() => announceLater(announce, events, attempt + 1));
  }, 500 * 2 ** (attempt - 1));
  timer.unref();
}

/** The stored JSON the store's append script writes: seq first, then the front's fields. */
function storedJson(seq: number, json: string): string {
  return `{"seq":${seq},${json.slice(1)}`;
}

/**
 * The messages an advance carries: a few small ones, consecutive and ending at the newest seq
 * (parallel chunks may have finished in any order), so a front holding the stream needs no read.
 */
function carried(added: [number, string][], newest: number): { messages?: string[] } {
  if (added.length === 0 || added.length > ANNOUNCED_MESSAGES_MAX) return {};
  added.sort((a, b) => a[0] - b[0]);
  let bytes = 0;
  for (let i = 0; i < added.length; i++) {
    const [seq, json] = added[i] as [number, string];
    bytes += json.length;
    if (seq !== newest - added.length + 1 + i || bytes > ANNOUNCED_BYTES_MAX) return {};
  }
  return { messages: added.map(([, json]) => json) };
}

/** Announces over room signals: one publish per spread bucket of the batch, whatever the number of streams. */
export function redisAnnouncer(signals: Pick<Signals, 'publishMany'>) {
  return async (events: RoomAdvanced[]): Promise<void> => {
    // One channel per spread bucket (rooms keep their order; buckets spread over the shards).
    const byBucket = new Map<number, RoomAdvanced[]>();
    for (const e of events) {
      const bucket = bucketOf(e.roomId);
      const list = byBucket.get(bucket);
      if (list) list.push(e);
      else byBucket.set(bucket, [e]);
    }
    await signals.publishMany([...byBucket].map(([bucket, list]) => [channels.advanced(bucket), JSON.stringify(list)] as const));
  };
}
