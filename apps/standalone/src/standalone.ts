import { archiverRole } from '@danmaku/archiver';
import type { Config } from '@danmaku/config';
import { connectorRole } from '@danmaku/connector';
import { frontRole } from '@danmaku/front';
import type { Logger } from '@danmaku/observability';
import { processorRole } from '@danmaku/processor';
import { pusherRole } from '@danmaku/pusher';
import { openProcessShared, type Shared } from '@danmaku/process';
import { runRoles, type AnyRole } from '@danmaku/role';

export interface Standalone {
  /** http://host:port of the front. */
  url: string;
  stop(): Promise<void>;
}

export interface StandaloneOptions {
  /**
   * Run a connector on the front's HTTP server (default). Tests that want every connector in a
   * process of its own (to kill it) turn it off; the pusher always runs.
   */
  connector?: boolean;
}

/**
 * The roles standalone runs, in start order: the consumer groups first (the in-memory bus starts
 * a new group at the end, so they join before anything is sent), then the front, whose port the
 * router's routes and the connector's socket.io share.
 */
export function standaloneRoles(options: StandaloneOptions = {}): AnyRole<Shared>[] {
  return [processorRole, archiverRole, frontRole, pusherRole, ...(options.connector === false ? [] : [connectorRole])];
}

/** Every role in one process: over the in-memory bus (the embedded default), or over Kafka when KAFKA_BROKERS is set. */
export async function startStandalone(config: Config, logger: Logger, options: StandaloneOptions = {}): Promise<Standalone> {
  const running = await runRoles(config, logger, standaloneRoles(options), { name: 'standalone', embedded: true, open: openProcessShared });
  await running.ready;
  const front = running.shared.front;
  if (!front) throw new Error('standalone started without a front');
  return { url: front.url, stop: () => running.stop() };
}
