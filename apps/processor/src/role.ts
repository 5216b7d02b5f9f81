import { pick, type Config } from '@danmaku/config';
import { listenOwnPort, type Role } from '@danmaku/role';
import { redisAnnouncer, startProcessor } from './processor.js';

const KEYS = ['host', 'processorPort', 'topic', 'processorBatch', 'processorLingerMs', 'gearUpMs', 'gearDownMs', 'gearHoldMs', 'gearCoolMs', 'gearInFlight'] as const;
export type ProcessorSettings = Pick<Config, (typeof KEYS)[number]>;

/** Lets the processor finish what the in-memory bus holds before the process (and the bus) goes. */
const DRAIN_MS = 5000;

export const processorRole: Role<ProcessorSettings> = {
  name: 'processor',
  settings: (config) => pick(config, KEYS),
  async start({ settings, logger, shared }) {
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
        // Kafka keeps what was not committed for the next member; the in-memory bus dies with the process.
        if (bus.kind === 'memory') {
          const deadline = Date.now() + DRAIN_MS;
          while ((await consumer.lag()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await consumer.stop();
        await own?.close();
      },
    };
  },
};
