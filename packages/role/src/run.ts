import { ConfigError, loadConfig, unsafeStartReason, type Config } from '@danmaku/config';
import { startDraining } from '@danmaku/http';
import { createLogger, stopOnSignals, type Logger } from '@danmaku/observability';
import type { Role, RunningRole } from './role.js';
import { ProcessShared } from './shared.js';

export interface RunningRoles {
  shared: ProcessShared;
  /** Every role's readiness. */
  ready: Promise<void>;
  /** Stops the roles in reverse order (those that take traffic started last and stop first), then the shared resources. */
  stop(): Promise<void>;
  /** /readyz answers 503 from now on, and every role drains (all at once); stop comes after. */
  drain(): Promise<void>;
}

/** A role of any settings type (a list mixes them); the runner hands each its own slice. */
export type AnyRole = Role<unknown>;

/**
 * Starts `roles` in order in this process. A role that fails to start stops the ones before it,
 * so a half-started process never lingers.
 */
export async function runRoles(config: Config, logger: Logger, roles: readonly AnyRole[], options: { name: string; embedded?: boolean }): Promise<RunningRoles> {
  const shared = new ProcessShared(config, logger, { embedded: options.embedded ?? roles.length > 1, name: options.name });
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
export async function runMain(role: AnyRole): Promise<RunningRoles> {
  const config = loadConfig();
  const logger = createLogger(role.name, config.logLevel);
  // Before anything opens: with the public secret, no role of a production deployment starts.
  const unsafe = unsafeStartReason(config);
  if (unsafe) {
    process.stderr.write(`${unsafe}\n`);
    process.exit(1);
  }
  let running: RunningRoles;
  try {
    running = await runRoles(config, logger, [role], { name: role.name, embedded: false });
  } catch (err) {
    // A setting that makes the start unsafe or impossible: say so plainly, exit non-zero.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  stopOnSignals(logger, () => running.stop(), { drain: () => running.drain(), drainMs: config.drainMs });
  await running.ready;
  return running;
}
