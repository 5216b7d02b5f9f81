import { ConfigError, loadConfig, refuseUnsafeStart, type Config } from '@danmaku/config';
import { startDraining } from '@danmaku/http';
import { createLogger, stopOnSignals, watchEventLoop, type Logger } from '@danmaku/observability';
import type { Role, RunningRole } from './role.js';

/** What the roles of one process share; the runner closes it after every role stopped. */
export interface ProcessResources {
  close(): Promise<void>;
}

export interface ProcessOptions {
  /** Several roles in one process: they share an in-memory bus (KAFKA_BROKERS is for roles apart). */
  embedded: boolean;
  /** Name of the process's Redis connections and Kafka client. */
  name: string;
}

/** Makes a process's shared resources (lazily: a role opens what it uses). */
export type OpenResources<P extends ProcessResources> = (config: Config, logger: Logger, options: ProcessOptions) => P;

export interface RunningRoles<P> {
  shared: P;
  /** Every role's readiness. */
  ready: Promise<void>;
  /** Stops the roles in reverse order (those that take traffic started last and stop first), then the shared resources. */
  stop(): Promise<void>;
  /** /readyz answers 503 from now on, and every role drains (all at once); stop comes after. */
  drain(): Promise<void>;
}

/** A role of any settings type (a list mixes them); the runner hands each its own slice. */
export type AnyRole<P = unknown> = Role<unknown, P>;

/**
 * Starts `roles` in order in this process. A role that fails to start stops the ones before it,
 * so a half-started process never lingers.
 */
export async function runRoles<P extends ProcessResources>(
  config: Config,
  logger: Logger,
  // P comes from `open`; each role may ask for less (an interface the resources implement).
  roles: readonly AnyRole<NoInfer<P>>[],
  options: { name: string; embedded?: boolean; open: OpenResources<P> },
): Promise<RunningRoles<P>> {
  const shared = options.open(config, logger, { embedded: options.embedded ?? roles.length > 1, name: options.name });
  const running: RunningRole[] = [];
  const stop = async (): Promise<void> => {
    for (const role of running.splice(0).reverse()) await role.stop();
    await shared.close();
  };
  try {
    for (const role of roles) {
      const roleLogger = roles.length > 1 ? logger.child({ role: role.name }) : logger;
      running.push(await role.start({ settings: role.settings(config), logger: roleLogger, shared }));
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const drain = async (): Promise<void> => {
    startDraining();
    await Promise.all(running.map((role) => role.drain?.()));
  };
  return { shared, ready: Promise.all(running.map((r) => r.ready)).then(() => undefined), stop, drain };
}

/**
 * A role's main.ts: config from the environment, the role alone in this process. SIGTERM drains
 * (/readyz 503 at once, then the role's drain, at most DANMAKU_DRAIN_MS) and stops; SIGINT, or a
 * second signal, stops at once.
 */
export async function runMain<P extends ProcessResources>(role: AnyRole<NoInfer<P>>, open: OpenResources<P>): Promise<RunningRoles<P>> {
  const config = loadConfig();
  const logger = createLogger(role.name, config.logLevel);
  // Before anything opens: with the public secret, no role of a production deployment starts.
  refuseUnsafeStart(config);
  let running: RunningRoles<P>;
  try {
    running = await runRoles(config, logger, [role], { name: role.name, embedded: false, open });
  } catch (err) {
    // A setting that makes the start unsafe or impossible: say so plainly, exit non-zero.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  stopOnSignals(logger, () => running.stop(), { drain: () => running.drain(), drainMs: config.drainMs });
  watchEventLoop(config.loopStallMs);
  await running.ready;
  return running;
}
