/**
 * The send pipeline every surface that accepts sends shares (HTTP front, socket.io connector,
 * standalone), wired from configuration in one place, so no surface can take a send past fewer
 * checks than another. Checks run cheap first: read-only switch, moderation (content, words, rate,
 * room gate), and the live stamp last, on messages that passed everything.
 *
 * It needs Redis and the bus only: the live stamp reads the room's live state from Redis, so a
 * connector opens no MySQL pool and no replay connection to take sends.
 */
import type { Bus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import { LiveStates } from '@danmaku/lives';
import { createModeration, type Moderation } from '@danmaku/moderation';
import type { Logger } from '@danmaku/observability';
import type { RedisStore } from '@danmaku/store';
import { gearPartitioner, readOnlyCheck, Switchboard } from '@danmaku/switches';
import { createSendPipeline, type SendPipeline } from './pipeline.js';

export interface SendPath {
  pipeline: SendPipeline;
  /** Degrade switches and gears, refreshed from Redis. */
  switches: Switchboard;
  /** Which rooms are live (the stamp), kept fresh over pub/sub. */
  lives: LiveStates;
  moderation: Moderation;
  close(): Promise<void>;
}

export async function openSend(config: Config, deps: { store: RedisStore; bus: Bus; logger: Logger; name: string }): Promise<SendPath> {
  const { store, bus, logger, name } = deps;
  const switches = await new Switchboard({ redis: store.write, refreshMs: config.switchesRefreshMs }).start();
  const lives = new LiveStates({ redis: store.write, logger, subscribe: true, name });
  const moderation = createModeration({ ...config, store, logger });
  const pipeline = createSendPipeline({
    bus,
    topic: config.topic,
    maxInFlight: config.maxInFlight,
    checks: [readOnlyCheck(switches), ...moderation.checks, lives.stamp],
    systemChecks: [moderation.contentCheck, lives.stamp],
    partition: gearPartitioner(switches, bus.partitions, config.gearSpread),
  });
  return {
    pipeline,
    switches,
    lives,
    moderation,
    async close() {
      switches.stop();
      moderation.stop();
      lives.close();
    },
  };
}
