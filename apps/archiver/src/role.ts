import { Archive } from '@danmaku/archive';
import { stopConsumer, type Consumer } from '@danmaku/bus';
import { listenOwnPort } from '@danmaku/http';
import type { Shared } from '@danmaku/process';
import { defineRole, type Role } from '@danmaku/role';
import { startArchiver } from './archiver.js';
import { ARCHIVER_SETTINGS, type ArchiverSettings } from './settings.js';

export const archiverRole: Role<ArchiverSettings, Shared> = defineRole('archiver', ARCHIVER_SETTINGS, async ({ settings, logger, shared }) => {
  const archive = new Archive(settings.mysqlUrl);
  const bus = await shared.bus();
  let consumer: Consumer | null = null;
  let stopping = false;
  const own = shared.embedded
    ? null
    : await listenOwnPort({
        name: 'archiver',
        logger,
        host: settings.host,
        port: settings.archiverPort,
        checks: { mysql: () => archive.ping(), bus: () => bus.healthy(), consuming: () => consumer !== null },
      });
  const consume = async (): Promise<void> => {
    consumer = await startArchiver({ bus, archive, topic: settings.topic, logger, batchSize: settings.archiverBatch, lingerMs: settings.archiverLingerMs, progressScope: shared.progressScope });
    logger.info({ address: own?.url, topic: settings.topic }, 'archiver consuming');
  };
  let ready: Promise<void>;
  if (bus.kind === 'memory') {
    // The in-memory bus starts a new group at the end: join before anything is sent. Inserts
    // migrate first and a batch that fails while MySQL is away is delivered again.
    archive.ready().catch((err: unknown) => logger.warn({ err }, 'MySQL not reachable yet; archiving retries until it is'));
    await consume();
    ready = Promise.resolve();
  } else {
    // Kafka keeps the group's place: migrate before consuming, and wait for MySQL (it may be
    // starting, or away) rather than exit, since messages wait safely on the bus meanwhile.
    ready = (async () => {
      for (let attempt = 1; !stopping; attempt++) {
        try {
          await archive.ready();
          break;
        } catch (err) {
          logger.warn({ err: (err as Error).message, attempt }, 'MySQL not ready for the archive; retrying');
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * attempt)));
        }
      }
      if (!stopping) await consume();
    })();
  }
  return {
    ready,
    async stop() {
      stopping = true;
      await ready.catch(() => undefined);
      const running = consumer as Consumer | null;
      if (running) await stopConsumer(running, bus);
      await own?.close();
      await archive.close();
    },
  };
});
