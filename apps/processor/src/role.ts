import type { Config } from '@danmaku/config';
import { defineRole, listenOwnPort, stopConsumer, type Role } from '@danmaku/role';
import { redisAnnouncer, startProcessor } from './processor.js';

const KEYS = ['host', 'processorPort', 'topic', 'processorBatch', 'processorLingerMs', 'gearUpMs', 'gearDownMs', 'gearHoldMs', 'gearCoolMs', 'gearInFlight'] as const;
export type ProcessorSettings = Pick<Config, (typeof KEYS)[number]>;

export const processorRole: Role<ProcessorSettings> = defineRole('processor', KEYS, async ({ settings, logger, shared }) => {
  const [store, bus] = await Promise.all([shared.store(), shared.bus()]);
  const consumer = await startProcessor({
    bus,
    store,
    logger,
    announce: redisAnnouncer(store.signals),
    topic: settings.topic,
    batchSize: settings.processorBatch,
    lingerMs: settings.processorLingerMs,
    gears: { upMs: settings.gearUpMs, downMs: settings.gearDownMs, holdMs: settings.gearHoldMs, coolMs: settings.gearCoolMs, inFlight: settings.gearInFlight },
  });
  const own = shared.embedded
    ? null
    : await listenOwnPort({ name: 'processor', logger, host: settings.host, port: settings.processorPort, checks: { redis: () => store.ping(), bus: () => bus.healthy() } });
  if (own) logger.info({ address: own.url, topic: settings.topic }, 'processor consuming');
  return {
    ready: Promise.resolve(),
    async stop() {
      await stopConsumer(consumer, bus);
      await own?.close();
    },
  };
});
