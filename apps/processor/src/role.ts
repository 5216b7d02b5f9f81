import { stopConsumer } from '@danmaku/bus';
import { listenOwnPort } from '@danmaku/http';
import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { redisAnnouncer, startProcessor } from './processor.js';
import { PROCESSOR_SETTINGS, type ProcessorSettings } from './settings.js';

export const processorRole: Role<ProcessorSettings, Shared> = defineRole('processor', PROCESSOR_SETTINGS, async ({ settings, logger, shared }) => {
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
