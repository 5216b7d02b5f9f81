/**
 * Every setting comes from the environment; this table is the one place that names them, gives
 * their defaults and says what they do (`npm run config` prints it, the README copies it).
 */
interface Setting {
  env: string;
  default: string;
  doc: string;
}

export const SETTINGS = {
  host: { env: 'HOST', default: '127.0.0.1', doc: 'Interface the HTTP and socket.io servers listen on.' },
  port: { env: 'PORT', default: '8080', doc: 'Port of the front (and of standalone).' },
  processorPort: { env: 'PROCESSOR_PORT', default: '9101', doc: 'Port of the processor\'s /metrics, /healthz and /readyz.' },
  redisUrl: { env: 'REDIS_URL', default: 'redis://127.0.0.1:16379', doc: 'Redis primary: every write goes here.' },
  redisReadUrl: { env: 'REDIS_READ_URL', default: '', doc: 'Redis replica for reads (the second machine room); empty = the primary.' },
  kafkaBrokers: { env: 'KAFKA_BROKERS', default: '', doc: 'Comma-separated Kafka brokers; empty = the in-memory bus (standalone only).' },
  topic: { env: 'DANMAKU_TOPIC', default: 'danmaku.messages', doc: 'Bus topic of all messages.' },
  partitions: { env: 'DANMAKU_PARTITIONS', default: '8', doc: 'Partitions of the topic (the Kafka topic must have this many).' },
  jwtSecret: { env: 'DANMAKU_JWT_SECRET', default: 'dev-secret-change-me', doc: 'HS256 secret of the tokens (API.md, Auth).' },
  retention: { env: 'DANMAKU_RETENTION', default: '1000', doc: 'Live messages kept per (room, type) in Redis; older ones are only in the archive.' },
  dedupWindow: { env: 'DANMAKU_DEDUP_WINDOW', default: '20000', doc: 'Message ids remembered per (room, type) to drop redelivered messages.' },
  onlineTtlMs: { env: 'DANMAKU_ONLINE_TTL_MS', default: '90000', doc: 'A viewer not seen (enter/heartbeat) for this long no longer counts as online.' },
  processorBatch: { env: 'DANMAKU_PROCESSOR_BATCH', default: '500', doc: 'Most messages the processor writes to Redis in one Lua call.' },
  busTimeoutMs: { env: 'DANMAKU_BUS_TIMEOUT_MS', default: '2000', doc: 'A send that the bus has not accepted by then answers 503.' },
  redisTimeoutMs: { env: 'DANMAKU_REDIS_TIMEOUT_MS', default: '800', doc: 'A Redis command that has not answered by then fails (503 to clients).' },
  mysqlUrl: { env: 'MYSQL_URL', default: 'mysql://danmaku:danmaku@127.0.0.1:13306/danmaku', doc: 'MySQL/MariaDB of the archive and replay.' },
  logLevel: { env: 'LOG_LEVEL', default: 'info', doc: 'pino log level (fatal, error, warn, info, debug, trace, silent).' },
} as const satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

export interface Config {
  host: string;
  port: number;
  processorPort: number;
  redisUrl: string;
  redisReadUrl: string | null;
  kafkaBrokers: string[];
  topic: string;
  partitions: number;
  jwtSecret: string;
  retention: number;
  dedupWindow: number;
  onlineTtlMs: number;
  processorBatch: number;
  busTimeoutMs: number;
  redisTimeoutMs: number;
  mysqlUrl: string;
  logLevel: string;
}

export class ConfigError extends Error {}

function positiveInt(key: Key, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    throw new ConfigError(`${SETTINGS[key].env} must be a positive integer, got "${text}"`);
  }
  return n;
}

/** 0 means "any free port" (tests). */
function port(key: Key, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${SETTINGS[key].env} must be a port number, got "${text}"`);
  return n;
}

/** Reads the environment (or `env`), applies defaults and `overrides`, and checks the numbers. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const raw = (key: Key): string => {
    const value = env[SETTINGS[key].env];
    return value === undefined || value === '' ? SETTINGS[key].default : value;
  };
  const config: Config = {
    host: raw('host'),
    port: port('port', raw('port')),
    processorPort: port('processorPort', raw('processorPort')),
    redisUrl: raw('redisUrl'),
    redisReadUrl: raw('redisReadUrl') || null,
    kafkaBrokers: raw('kafkaBrokers').split(',').map((b) => b.trim()).filter(Boolean),
    topic: raw('topic'),
    partitions: positiveInt('partitions', raw('partitions')),
    jwtSecret: raw('jwtSecret'),
    retention: positiveInt('retention', raw('retention')),
    dedupWindow: positiveInt('dedupWindow', raw('dedupWindow')),
    onlineTtlMs: positiveInt('onlineTtlMs', raw('onlineTtlMs')),
    processorBatch: positiveInt('processorBatch', raw('processorBatch')),
    busTimeoutMs: positiveInt('busTimeoutMs', raw('busTimeoutMs')),
    redisTimeoutMs: positiveInt('redisTimeoutMs', raw('redisTimeoutMs')),
    mysqlUrl: raw('mysqlUrl'),
    logLevel: raw('logLevel'),
  };
  return { ...config, ...overrides };
}

export function isDefaultSecret(config: Config): boolean {
  return config.jwtSecret === SETTINGS.jwtSecret.default;
}

/** The settings table as Markdown, for `npm run config` and the README. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s) => `| \`${s.env}\` | \`${s.default}\` | ${s.doc} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
