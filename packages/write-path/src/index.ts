/**
 * The write path every surface that accepts sends shares (HTTP front, socket.io connector,
 * standalone), wired from configuration in one place, so no surface can take a send past fewer
 * checks than another. Checks run cheap first: read-only switch, moderation (content, words, rate,
 * room gate), and the live stamp last, on messages that passed everything.
 */
import { openReplay, type ReplayStack } from '@danmaku/archive';
import type { Bus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import { createIngest, type Ingest } from '@danmaku/ingest';
import { createModeration, type Moderation } from '@danmaku/moderation';
import type { Logger } from '@danmaku/observability';
import type { RedisStore } from '@danmaku/store';
import { gearPartitioner, readOnlyCheck, Switchboard } from '@danmaku/switches';

export interface WritePath {
  ingest: Ingest;
  /** Degrade switches and gears, refreshed from Redis. */
  switches: Switchboard;
  /** Lives, archive and replay (the live stamp needs the lives). */
  replay: ReplayStack;
  moderation: Moderation;
  close(): Promise<void>;
}

export async function openWritePath(config: Config, deps: { store: RedisStore; bus: Bus; logger: Logger; name: string; progressScope?: string }): Promise<WritePath> {
  const { store, bus, logger, name } = deps;
  const switches = await new Switchboard({ redis: store.write, refreshMs: config.switchesRefreshMs }).start();
  const replay = openReplay(config, store.write, logger, name, { progressScope: deps.progressScope });
  const moderation = createModeration({ ...config, store, logger });
  const ingest = createIngest({
    bus,
    topic: config.topic,
    maxInFlight: config.maxInFlight,
    checks: [readOnlyCheck(switches), ...moderation.checks, replay.lives.stampCheck],
    partition: gearPartitioner(switches, bus.partitions, config.gearSpread),
  });
  return {
    ingest,
    switches,
    replay,
    moderation,
    async close() {
      switches.stop();
      moderation.stop();
      await replay.close();
    },
  };
}
