import { randomBytes } from 'node:crypto';
import { createAuth, type Auth } from '@danmaku/auth';
import { MemoryBus, openBus, type Bus } from '@danmaku/bus';
import { ConfigError, isDefaultSecret, unsafeStartReason, type Config } from '@danmaku/config';
import type { FastifyInstance } from '@danmaku/http';
import type { Logger } from '@danmaku/observability';
import { openStore, type RedisStore } from '@danmaku/store';
import { archiveScope, openReplay, type ReplayStack } from '@danmaku/archive';
import { openSend, type SendPath } from '@danmaku/send';
import type { OpenResources, ProcessOptions } from '@danmaku/role';

/** The front's HTTP server, once a front runs in this process: other roles share its port. */
export interface FrontServer {
  app: FastifyInstance;
  /** http://host:port it listens on. */
  url: string;
}

/**
 * What the roles of one process share, opened on first use and closed by the runner after every
 * role stopped. A process running one role owns them alone; standalone's roles share one store,
 * one bus (in memory, or Kafka when KAFKA_BROKERS names one), one send path and the front's port.
 */
export interface Shared {
  /** True when several roles run in this process (the front's port serves them all). */
  readonly embedded: boolean;
  /** False when no bus is configured for a role that can live without one (a connector without Kafka). */
  readonly hasBus: boolean;
  readonly auth: Auth;
  /**
   * Where this process's archivers record, and its replay readers look up, the archived-up-to
   * watermark: the deployment and topic, or (behind an in-memory bus of its own) this process alone.
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

/** The resources of one process, opened lazily from the whole config (roles only see slices). */
export class ProcessShared implements Shared {
  readonly embedded: boolean;
  readonly hasBus: boolean;
  /** Standalone without KAFKA_BROKERS: records go from role to role in this process's memory. */
  readonly inMemoryBus: boolean;
  readonly progressScope: string;
  front: FrontServer | null = null;
  private storeOpened: Promise<{ store: RedisStore; close(): Promise<void> }> | null = null;
  private busOpened: Promise<Bus> | null = null;
  private sendOpened: Promise<SendPath> | null = null;
  private replayOpened: Promise<ReplayStack> | null = null;
  private tokens: Auth | null = null;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: ProcessOptions,
  ) {
    this.embedded = options.embedded;
    // One process with several roles can carry records between them in memory; a role alone needs
    // Kafka. A Kafka that is named is used either way: standalone over a broker is the pipeline
    // of the split roles in one process.
    this.inMemoryBus = options.embedded && config.kafkaBrokers.length === 0;
    this.hasBus = this.inMemoryBus || config.kafkaBrokers.length > 0;
    // An in-memory bus is this process's alone, and so is the watermark of its archiver.
    this.progressScope = this.inMemoryBus ? `${options.name}-${randomBytes(5).toString('hex')}/${config.topic}` : archiveScope(config);
  }

  /** Made for the first role that checks tokens, which is when the development secret matters. */
  get auth(): Auth {
    if (!this.tokens) {
      // The public secret lets anyone sign admin tokens: never in production or off loopback.
      const unsafe = unsafeStartReason(this.config);
      if (unsafe) throw new ConfigError(unsafe);
      if (isDefaultSecret(this.config) && !this.embedded) this.logger.warn('DANMAKU_JWT_SECRET is the development default; set your own');
      this.tokens = createAuth(this.config.jwtSecret);
    }
    return this.tokens;
  }

  store(): Promise<RedisStore> {
    this.storeOpened ??= openStore(this.config, this.options.name);
    return this.storeOpened.then((opened) => opened.store);
  }

  bus(): Promise<Bus> {
    this.busOpened ??= this.inMemoryBus
      ? Promise.resolve(new MemoryBus({ partitions: this.config.partitions, logger: this.logger }))
      : openBus(this.config, this.options.name, this.logger, !this.embedded);
    return this.busOpened;
  }

  send(): Promise<SendPath> {
    this.sendOpened ??= (async () => {
      const [store, bus] = await Promise.all([this.store(), this.bus()]);
      return openSend(this.config, { store, bus, logger: this.logger, name: this.options.name });
    })();
    return this.sendOpened;
  }

  replay(): Promise<ReplayStack> {
    this.replayOpened ??= (async () => {
      const [store, send] = await Promise.all([this.store(), this.send()]);
      return openReplay(this.config, { redis: store.write, states: send.lives, logger: this.logger, name: this.options.name, progressScope: this.progressScope });
    })();
    return this.replayOpened;
  }

  /** After every role stopped: the bus, then what the replay stack and the send path opened, then Redis. */
  async close(): Promise<void> {
    const settle = async <T>(opened: Promise<T> | null): Promise<T | null> => (opened ? opened.catch(() => null) : null);
    await (await settle(this.busOpened))?.close();
    await (await settle(this.replayOpened))?.close();
    await (await settle(this.sendOpened))?.close();
    await (await settle(this.storeOpened))?.close();
  }
}

/** For the role runner (runMain, runRoles): opens nothing yet, each resource on its first use. */
export const openProcessShared: OpenResources<ProcessShared> = (config, logger, options) => new ProcessShared(config, logger, options);
