import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from '@danmaku/observability';

type Bindings = Parameters<Logger['child']>[0];
type ChildLoggerOptions = NonNullable<Parameters<Logger['child']>[1]>;

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A request's logger that becomes a real pino child (with the request id bound) on the first
 * line it writes at an enabled level. Fastify makes one logger per request; most requests log
 * nothing, and a pino child per request costs a measurable share of a cached poll.
 */
class RequestLogger {
  #real: Logger | undefined;
  readonly #parent: Logger;
  readonly #bindings: Bindings;

  constructor(parent: Logger, bindings: Bindings) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #child(): Logger {
    return (this.#real ??= this.#parent.child(this.#bindings));
  }

  #write(level: Level, args: unknown[]): void {
    // Before the child exists, its level is the parent's (a child inherits it when made).
    if (this.#real === undefined && !this.#parent.isLevelEnabled(level)) return;
    const child = this.#child();
    (child[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return (this.#real ?? this.#parent).level;
  }

  set level(level: string) {
    this.#child().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#real ?? this.#parent).isLevelEnabled(level);
  }

  bindings(): Bindings {
    return this.#child().bindings();
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#child().child(bindings, options) as FastifyBaseLogger;
  }

  // Methods on the prototype, not arrow fields: nothing is allocated per request but the object.
  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}
}

/**
 * Fastify's `childLoggerFactory`: a lazy child for the ordinary request, a real one at once when
 * the route asks for its own level or serializers.
 */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  // Our servers are built with a pino logger (createHttpServer's `logger`).
  const parent = logger as Logger;
  if (options.level !== undefined || options.serializers !== undefined) return parent.child(bindings, options) as FastifyBaseLogger;
  return new RequestLogger(parent, bindings) as unknown as FastifyBaseLogger;
}
