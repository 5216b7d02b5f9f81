import type { Auth } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import type { FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';
import type { RedisStore } from '@danmaku/store';
import type { ReplayStack } from '@danmaku/archive';
import type { SendPath } from '@danmaku/send';

/**
 * A role (front, processor, archiver, router, connector, pusher) as a unit a process can run
 * alone (its app's main.ts) or beside others (standalone), the way Fastify plugins compose:
 * the role names the settings it reads and starts from a context; what the process owns
 * (connections, the bus, the front's HTTP server) comes through `shared`.
 */
export interface Role<S> {
  /** Also the name of its logger and its Redis connections. */
  readonly name: string;
  /** The role's slice of the configuration: the only settings its start reads. */
  settings(config: Config): S;
  start(ctx: RoleContext<S>): Promise<RunningRole>;
}

export interface RoleContext<S> {
  settings: S;
  logger: Logger;
  shared: Shared;
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

/** The front's HTTP server, once a front runs in this process: other roles share its port. */
export interface FrontServer {
  app: FastifyInstance;
  /** http://host:port it listens on. */
  url: string;
}

/**
 * What the roles of one process share, opened on first use and closed by the runner after every
 * role stopped. A process running one role owns them alone; standalone's roles share one store,
 * one in-memory bus, one send path and the front's port.
 */
export interface Shared {
  /** True when several roles run in this process (the front's port serves them all). */
  readonly embedded: boolean;
  /** False when no bus is configured for a role that can live without one (a connector without Kafka). */
  readonly hasBus: boolean;
  readonly auth: Auth;
  /**
   * Where this process's archivers record, and its replay readers look up, the archived-up-to
   * watermark: the deployment and topic, or (embedded, behind a bus of its own) this process alone.
   */
  readonly progressScope: string;
  store(): Promise<RedisStore>;
  bus(): Promise<Bus>;
  /** The send pipeline with its switches, moderation and live stamp: every surface that accepts sends shares it. */
  send(): Promise<SendPath>;
  /** Lives, the MySQL archive and the replay reader (a front's; opens a MySQL pool on first use). */
  replay(): Promise<ReplayStack>;
  /** Set by the front role when it runs in this process. */
  front: FrontServer | null;
}

/** A role's settings type, for code that wires roles. */
export type SettingsOf<R> = R extends Role<infer S> ? S : never;
