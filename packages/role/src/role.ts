import type { Config } from '@danmaku/config';
import type { Logger } from '@danmaku/observability';

/**
 * A role (front, processor, archiver, router, connector, pusher) as a unit a process can run
 * alone (its app's main.ts) or beside others (standalone), the way Fastify plugins compose:
 * the role names the settings it reads and starts from a context; what the process owns
 * (connections, the bus, the front's HTTP server: `P`, opened by the runner) comes through `shared`.
 */
export interface Role<S, P = unknown> {
  /** Also the name of its logger and its Redis connections. */
  readonly name: string;
  /** The role's slice of the configuration: the only settings its start reads. */
  settings(config: Config): S;
  start(ctx: RoleContext<S, P>): Promise<RunningRole>;
}

export interface RoleContext<S, P> {
  settings: S;
  logger: Logger;
  /** What the roles of this process share (see runRoles' `open`). */
  shared: P;
}

export interface RunningRole {
  /**
   * Resolves once the role serves (listening, consuming). Start returns before that where the
   * role waits on a dependency that may come later (the archiver waits for MySQL).
   */
  ready: Promise<void>;
  /** Graceful: finish the work in hand, commit, close what the role opened itself. */
  stop(): Promise<void>;
  /**
   * Before stop on SIGTERM (a deploy), while /readyz already answers 503: hand the role's clients
   * over to its peers (a connector moves its connections over DANMAKU_DRAIN_MS). Optional.
   */
  drain?(): Promise<void>;
}

/** A role's settings type, for code that wires roles. */
export type SettingsOf<R> = R extends Role<infer S, never> ? S : never;
