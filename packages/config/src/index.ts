/**
 * Every setting comes from the environment; this table is the one place that names them, gives
 * their defaults, says what they do (`npm run config` prints it) and how
 * the text is read: the Config type is derived from the table, so a setting is written down once.
 */

export class ConfigError extends Error {}

/** Reads one setting's text (never empty: an empty value means the default); `env` names it in errors. */
type Parser<T> = (text: string, env: string) => T;

interface Setting {
  env: string;
  default: string;
  doc: string;
  /** How the text becomes a value; without one the setting is the text itself. */
  parse?: Parser<unknown>;
}

function positiveInt(text: string, env: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${env} must be a positive integer, got "${text}"`);
  return n;
}

function wholeNumber(text: string, env: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${env} must be a whole number, got "${text}"`);
  return n;
}

function fraction(text: string, env: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`${env} must be a number from 0 to 1, got "${text}"`);
  return n;
}

/** 0 means "any free port" (tests). */
function port(text: string, env: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${env} must be a port number, got "${text}"`);
  return n;
}

function oneOf<const T extends string>(...allowed: T[]): Parser<T> {
  return (text, env) => {
    if (!(allowed as string[]).includes(text)) throw new ConfigError(`${env} must be one of ${allowed.join(', ')}, got "${text}"`);
    return text as T;
  };
}

function boolean(text: string, env: string): boolean {
  return oneOf('true', 'false')(text, env) === 'true';
}

/** Comma-separated, blanks dropped. */
function list(text: string): string[] {
  return text.split(',').map((item) => item.trim()).filter(Boolean);
}

/** A setting whose default is empty: null when unset. */
function optional(text: string): string | null {
  return text || null;
}

/** CSP sources: separated by spaces or commas. */
function sources(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** A count of processes: a positive integer, or `auto` (one per CPU, resolved by whoever forks them). */
function workers(text: string, env: string): number | 'auto' {
  return text === 'auto' ? 'auto' : positiveInt(text, env);
}

/** Fastify's trustProxy: a boolean, or the proxies' addresses. */
/** `*` or origins as browsers send them (scheme://host[:port], no path, no trailing slash). */
function origins(text: string, env: string): string[] {
  const listed = list(text);
  for (const origin of listed) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) throw new ConfigError(`${env} must list origins like https://player.example or *, got "${origin}"`);
  }
  return listed;
}

function trustProxy(text: string): boolean | string {
  if (text === 'false' || text === '0') return false;
  if (text === 'true') return true;
  return text;
}

export const SETTINGS = {
  host: { env: 'HOST', default: '127.0.0.1', doc: 'Interface the HTTP and socket.io servers listen on.' },
  port: { env: 'PORT', default: '8080', doc: 'Port of the front (and of standalone).', parse: port },
  processorPort: { env: 'PROCESSOR_PORT', default: '9101', doc: 'Port of the processor\'s /metrics, /healthz and /readyz.', parse: port },
  redisUrl: { env: 'REDIS_URL', default: 'redis://127.0.0.1:16379', doc: 'Redis primary: every write goes here.' },
  redisReadUrl: { env: 'REDIS_READ_URL', default: '', doc: 'Redis replica for reads (the second machine room); empty = the primary.', parse: optional },
  redisClusterNodes: { env: 'REDIS_CLUSTER_NODES', default: '', doc: 'Redis Cluster seed nodes (host:port,...); set, every role uses the cluster instead of REDIS_URL.', parse: optional },
  redisClusterReplicaReads: { env: 'DANMAKU_REDIS_CLUSTER_REPLICA_READS', default: 'false', doc: 'true = on a Redis Cluster, reads go to replicas (scaleReads): the cluster form of REDIS_READ_URL.', parse: boolean },
  redisWaitReplicas: { env: 'DANMAKU_REDIS_WAIT_REPLICAS', default: '0', doc: 'After each append the processor WAITs for this many replicas before committing offsets; 0 = no WAIT (a primary that dies before replicating can lose acknowledged writes).', parse: wholeNumber },
  redisWaitTimeoutMs: { env: 'DANMAKU_REDIS_WAIT_TIMEOUT_MS', default: '100', doc: 'Longest WAIT for replicas; too few replicas by then fails the batch, which the bus redelivers.', parse: positiveInt },
  kafkaBrokers: { env: 'KAFKA_BROKERS', default: '', doc: 'Comma-separated Kafka brokers; empty = the in-memory bus (standalone only).', parse: list },
  kafkaReplication: { env: 'DANMAKU_KAFKA_REPLICATION', default: '0', doc: 'Replication factor of the topics the project creates; 0 = 3, or the number of brokers when fewer.', parse: wholeNumber },
  kafkaMinInsync: { env: 'DANMAKU_KAFKA_MIN_INSYNC', default: '0', doc: 'min.insync.replicas of the topics the project creates; 0 = 2 when replicated three times or more, else 1.', parse: wholeNumber },
  kafkaSessionTimeoutMs: { env: 'DANMAKU_KAFKA_SESSION_TIMEOUT_MS', default: '6000', doc: 'Consumer group session: a member silent this long loses its partitions to the others (at least the brokers\' group.min.session.timeout.ms).', parse: positiveInt },
  kafkaLingerMs: {
    env: 'DANMAKU_KAFKA_LINGER_MS',
    default: '20',
    doc: 'How long a send that finds no produce in flight waits for others to share its Kafka request (0 = at once); the request goes sooner once 16 sends wait. At 200 sends/s, 20 ms instead of 5 cut the broker JVM CPU per message by about 40 % and the server by about 10 % (send-low), for at most 20 ms more before a lone send is acknowledged.',
    parse: wholeNumber,
  },
  kafkaCommitMs: {
    env: 'DANMAKU_KAFKA_COMMIT_MS',
    default: '500',
    doc: 'A consumer (processor, archiver) commits a partition\'s offset at most this often; batches handled in between are committed by one trailing commit, and a stop commits what is owed. A crash redelivers at most this much more, dropped by message id. 0 = a commit after every batch.',
    parse: wholeNumber,
  },
  kafkaIdempotent: { env: 'DANMAKU_KAFKA_IDEMPOTENT', default: 'false', doc: 'true = kafkajs\'s idempotent producer (off by default: docs/developing.md, "Why kafkajs on Kafka 4", says how it failed under faults; duplicates are dropped by message id either way).', parse: boolean },
  kafkaSsl: { env: 'KAFKA_SSL', default: 'false', doc: 'true = TLS to the brokers (the system CAs, plus KAFKA_SSL_CA).', parse: boolean },
  kafkaSslCa: { env: 'KAFKA_SSL_CA', default: '', doc: 'Path of a PEM file of CAs to trust for the brokers\' TLS certificates.', parse: optional },
  kafkaSaslMechanism: { env: 'KAFKA_SASL_MECHANISM', default: '', doc: 'SASL to the brokers: plain, scram-sha-256 or scram-sha-512; empty = none.', parse: (text: string, env: string) => (text ? oneOf('plain', 'scram-sha-256', 'scram-sha-512')(text, env) : null) },
  kafkaSaslUsername: { env: 'KAFKA_SASL_USERNAME', default: '', doc: 'SASL user name.' },
  kafkaSaslPassword: { env: 'KAFKA_SASL_PASSWORD', default: '', doc: 'SASL password.' },
  topic: { env: 'DANMAKU_TOPIC', default: 'danmaku.messages', doc: 'Bus topic of all messages.' },
  partitions: { env: 'DANMAKU_PARTITIONS', default: '8', doc: 'Partitions of the topic (the Kafka topic must have this many).', parse: positiveInt },
  jwtSecret: { env: 'DANMAKU_JWT_SECRET', default: 'dev-secret-change-me', doc: 'HS256 secret of the tokens (API.md, Auth).' },
  retention: { env: 'DANMAKU_RETENTION', default: '1000', doc: 'Live messages kept per (room, type) in Redis; older ones are only in the archive. A hot stream keeps more: its last 10 s of messages, up to ten times this, so a poller never falls behind it.', parse: positiveInt },
  dedupWindow: { env: 'DANMAKU_DEDUP_WINDOW', default: '20000', doc: 'Message ids remembered per (room, type) to drop redelivered messages.', parse: positiveInt },
  roomTtlS: { env: 'DANMAKU_ROOM_TTL_S', default: '86400', doc: 'Seconds a room\'s live state in Redis (each (room, type)\'s messages, dedup ids, seq counter, floor) lives after the room\'s last write; then Redis forgets it (the archive keeps everything) and a poll or join answers an empty window.', parse: positiveInt },
  catchUpMaxAgeMs: { env: 'DANMAKU_CATCHUP_MAX_AGE_MS', default: '60000', doc: 'A poll or socket.io join whose cursor points at messages older than this gets only newer ones, with skipped: true (stale comments are not replayed to a viewer who comes back; the replay API reads everything).', parse: positiveInt },
  onlineTtlMs: { env: 'DANMAKU_ONLINE_TTL_MS', default: '90000', doc: 'A viewer not seen (enter/heartbeat) for this long no longer counts as online.', parse: positiveInt },
  processorLingerMs: {
    env: 'DANMAKU_PROCESSOR_LINGER_MS',
    default: '25',
    doc: 'How long the processor waits to fill a batch. At low rates each batch is one fetch, one Lua call, one announcement, one push and one commit whatever its size: 25 ms instead of 5 cut the server CPU per message by about 30 % at 200 messages/s (send-low), for at most 25 ms of latency. Busy partitions fill their batches sooner.',
    parse: wholeNumber,
  },
  archiverLingerMs: { env: 'DANMAKU_ARCHIVER_LINGER_MS', default: '200', doc: 'How long the archiver waits to fill a batch before inserting into MySQL.', parse: wholeNumber },
  processorBatch: { env: 'DANMAKU_PROCESSOR_BATCH', default: '500', doc: 'Most messages the processor writes to Redis in one Lua call.', parse: positiveInt },
  busTimeoutMs: { env: 'DANMAKU_BUS_TIMEOUT_MS', default: '2000', doc: 'A send that the bus has not accepted by then answers 503.', parse: positiveInt },
  maxInFlight: { env: 'DANMAKU_MAX_IN_FLIGHT', default: '2000', doc: 'Sends one process may have waiting for the bus at once; past it sends answer 503 overloaded with Retry-After (0 = no cap).', parse: wholeNumber },
  redisTimeoutMs: { env: 'DANMAKU_REDIS_TIMEOUT_MS', default: '800', doc: 'A Redis command that has not answered by then fails (503 to clients).', parse: positiveInt },
  mysqlUrl: { env: 'MYSQL_URL', default: 'mysql://danmaku:danmaku@127.0.0.1:13306/danmaku', doc: 'MySQL/MariaDB of the archive and replay.' },
  // Replay, archive, moderation
  archiverPort: { env: 'ARCHIVER_PORT', default: '9102', doc: 'Port of the archiver\'s /metrics, /healthz and /readyz.', parse: port },
  archiverBatch: { env: 'DANMAKU_ARCHIVER_BATCH', default: '1000', doc: 'Most messages the archiver inserts into MySQL in one statement.', parse: positiveInt },
  replayRedisUrl: { env: 'REPLAY_REDIS_URL', default: '', doc: 'Redis of the replay cache (segments of finished lives); empty = REDIS_URL.', parse: optional },
  replaySegmentMs: { env: 'DANMAKU_REPLAY_SEGMENT_MS', default: '60000', doc: 'Replay is cached in segments of this many ms of a live.', parse: positiveInt },
  replayRedisTtlS: { env: 'DANMAKU_REPLAY_REDIS_TTL_S', default: '600', doc: 'Seconds a replay segment stays in the replay Redis after it was loaded.', parse: positiveInt },
  replayCacheMb: { env: 'DANMAKU_REPLAY_CACHE_MB', default: '64', doc: 'Bytes (MB) of replay segments each front keeps in memory.', parse: positiveInt },
  replaySettleMs: { env: 'DANMAKU_REPLAY_SETTLE_MS', default: '5000', doc: 'A replay segment younger than this (the archiver may still be writing it) is read from MySQL, not cached. Keep it well above the archiver lag (DANMAKU_ARCHIVER_LINGER_MS and then some).', parse: positiveInt },
  rateUserMax: { env: 'DANMAKU_RATE_USER_MAX', default: '20', doc: 'Messages one user may send per rate window, over all fronts and rooms.', parse: positiveInt },
  rateIpMax: { env: 'DANMAKU_RATE_IP_MAX', default: '300', doc: 'Messages one client IP may send per rate window, over all fronts (high: mobile carriers put many viewers behind one address).', parse: positiveInt },
  trustProxy: { env: 'DANMAKU_TRUST_PROXY', default: 'false', doc: 'Whom to believe in X-Forwarded-For for the client IP (per-IP limits): false, true (only behind a proxy that overwrites the header), or comma-separated proxy addresses/CIDRs.', parse: trustProxy },
  rateIpAllow: { env: 'DANMAKU_RATE_IP_ALLOW', default: '127.0.0.1,::1,::ffff:127.0.0.1', doc: 'Comma-separated client IPs exempt from the per-IP limit (loopback: local tools and benches); the per-user limit still applies.', parse: list },
  rateWindowMs: { env: 'DANMAKU_RATE_WINDOW_MS', default: '10000', doc: 'The rate-limit window (ms).', parse: positiveInt },
  rateLocalShare: {
    env: 'DANMAKU_RATE_LOCAL_SHARE',
    default: '0.5',
    doc: 'The part of a rate limit (0-1) a process grants from its own count, adding its counts to Redis in the background; past it every send of that user or IP asks Redis, so the limit holds exactly at its end. A sender spread over k processes within one sync may get up to (1 + (k-1) x share) x the limit. 0 = every send asks Redis.',
    parse: fraction,
  },
  rateSyncMs: { env: 'DANMAKU_RATE_SYNC_MS', default: '100', doc: 'How long sends counted locally wait before they are added to the shared rate counters in Redis, in one round trip.', parse: positiveInt },
  sensitiveWords: { env: 'DANMAKU_SENSITIVE_WORDS', default: '', doc: 'Comma-separated words the filter catches (case-insensitive); more can be added at run time in the Redis set dm:words.', parse: list },
  sensitiveMode: { env: 'DANMAKU_SENSITIVE_MODE', default: 'replace', doc: '"replace" (masks a caught word with *) or "reject" (400 content_rejected).', parse: oneOf('replace', 'reject') },
  // Hot rooms: gears, local cache, adaptive polls, likes, switches
  gearUpMs: { env: 'DANMAKU_GEAR_UP_MS', default: '500', doc: 'Processor delay (now - ts) at which a (room, type) climbs one gear.', parse: positiveInt },
  gearDownMs: { env: 'DANMAKU_GEAR_DOWN_MS', default: '100', doc: 'Delay at or below which a stream counts as calm (it goes down one gear after DANMAKU_GEAR_COOL_MS calm or idle).', parse: positiveInt },
  gearHoldMs: { env: 'DANMAKU_GEAR_HOLD_MS', default: '2000', doc: 'Least time a stream stays in a gear before the next change (hysteresis).', parse: positiveInt },
  gearCoolMs: { env: 'DANMAKU_GEAR_COOL_MS', default: '10000', doc: 'Calm (or idle) time after which a stream goes down one gear.', parse: positiveInt },
  gearSpread: { env: 'DANMAKU_GEAR_SPREAD', default: '4', doc: 'Partitions a stream in gear 2 or 4 is spread over by the fronts.', parse: positiveInt },
  gearInFlight: { env: 'DANMAKU_GEAR_IN_FLIGHT', default: '4', doc: 'Lua calls of one stream the processor keeps in flight in gears 3 and 4.', parse: positiveInt },
  switchesRefreshMs: { env: 'DANMAKU_SWITCHES_REFRESH_MS', default: '1000', doc: 'How often each process re-reads the degrade switches and gears from Redis.', parse: positiveInt },
  cacheRefreshMs: { env: 'DANMAKU_CACHE_REFRESH_MS', default: '1000', doc: 'How often a front refreshes the local cache of a big room from Redis.', parse: positiveInt },
  bigRoomOnline: { env: 'DANMAKU_BIG_ROOM_ONLINE', default: '2000', doc: 'Online viewers at which a room counts as big (local cache, short polls).', parse: positiveInt },
  bigRoomPollRate: { env: 'DANMAKU_BIG_ROOM_POLL_RATE', default: '50', doc: 'Polls per second of one room on one front at which the room counts as big.', parse: positiveInt },
  bigRoomCoolMs: { env: 'DANMAKU_BIG_ROOM_COOL_MS', default: '30000', doc: 'A big room under both thresholds for this long is small again (its cache is dropped).', parse: positiveInt },
  bigRoomPollLimit: { env: 'DANMAKU_BIG_ROOM_POLL_LIMIT', default: '50', doc: 'Most comments one poll of a big room returns (sampled evenly when more arrived; gifts are never dropped).', parse: positiveInt },
  bigRoomSpanMs: { env: 'DANMAKU_BIG_ROOM_SPAN_MS', default: '10000', doc: 'A big room\'s poll returns only comments newer than this (older ones are stale on screen).', parse: positiveInt },
  pollMemoryStreams: { env: 'DANMAKU_POLL_MEMORY_STREAMS', default: '20000', doc: 'Most (room, type) streams a front keeps in memory for the polls of small rooms (least recently polled go first); 0 = every small-room poll reads Redis.', parse: wholeNumber },
  pollMemoryWindow: { env: 'DANMAKU_POLL_MEMORY_WINDOW', default: '200', doc: 'Newest messages a front keeps per polled stream (at most DANMAKU_RETENTION); an older cursor is answered from Redis.', parse: positiveInt },
  pollMemoryIdleMs: { env: 'DANMAKU_POLL_MEMORY_IDLE_MS', default: '60000', doc: 'A stream nobody polled on this front for this long leaves its memory.', parse: positiveInt },
  pressureLagMs: { env: 'DANMAKU_PRESSURE_LAG_MS', default: '100', doc: 'Event-loop delay (p99 over a second) above which a front counts as under pressure and doubles retryAfterMs.', parse: positiveInt },
  pollRetryMs: { env: 'DANMAKU_POLL_RETRY_MS', default: '2000', doc: 'retryAfterMs of a poll (doubled when the front is under pressure; the pollIntervalMs switch raises it).', parse: positiveInt },
  likesFlushMs: { env: 'DANMAKU_LIKES_FLUSH_MS', default: '1000', doc: 'How often a front flushes its aggregated like counts to Redis.', parse: positiveInt },
  // Long connections: router, connector, pusher
  roomDeliveryBudget: { env: 'DANMAKU_ROOM_DELIVERY_BUDGET', default: '500000', doc: 'Deliveries per second (messages x sockets) one connector spends on one room; a room that wants more has its comments sampled by that connector (by seq, gifts and system notices whole, packets say skipped) until it wants under 70 % of it again. 0 = no budget. The bigRoomSampleRatio switch, when set, overrides it.', parse: wholeNumber },
  loopStallMs: {
    env: 'DANMAKU_LOOP_STALL_MS',
    default: '30000',
    doc: 'A process whose event loop has not turned for this long writes why to stderr and kills itself, so its supervisor starts it again (a stuck loop answers nothing and never exits by itself); 0 = off.',
    parse: wholeNumber,
  },
  drainMs: { env: 'DANMAKU_DRAIN_MS', default: '30000', doc: 'On SIGTERM a role answers /readyz 503 at once, and a connector closes its connections spread evenly over this many ms (socket.io clients are told to move first), then exits; a front refuses new sends (503 draining) and answers those in flight, consumers commit and leave their group. SIGINT stops at once.', parse: wholeNumber },
  routerPort: { env: 'ROUTER_PORT', default: '8090', doc: 'Port of the router (GET /v1/route) when it runs on its own.', parse: port },
  connectorWorkers: { env: 'DANMAKU_CONNECTOR_WORKERS', default: '1', doc: 'Processes of a connector run on its own (apps/connector main): 1 = one process; N or `auto` (one per CPU) = a primary that forks N workers behind the same ports (socket.io and /sub on CONNECTOR_PORT, sticky by session; DANMAKU_BILI_TCP_PORT), each its own connector node with its own connections, so one connector holds N times what one process\'s open-files limit allows and uses every core. /readyz is ready when every worker is, /metrics sums them, a worker that dies is forked again, SIGTERM drains them all. The standalone runs one process.', parse: workers },
  connectorPort: { env: 'CONNECTOR_PORT', default: '8091', doc: 'Port of a connector (socket.io, /metrics) when it runs on its own.', parse: port },
  pusherPort: { env: 'PUSHER_PORT', default: '9103', doc: 'Port of the pusher\'s /metrics, /healthz and /readyz.', parse: port },
  roomInfoMs: { env: 'DANMAKU_ROOM_INFO_MS', default: '5000', doc: 'How often a connector sends each room its online count and likes (socket.io `room`, Bilibili ONLINE_RANK_COUNT / WATCHED_CHANGE / LIKE_INFO_V3_UPDATE).', parse: positiveInt },
  biliTcpPort: { env: 'DANMAKU_BILI_TCP_PORT', default: '2243', doc: 'Raw TCP port of the Bilibili live protocol on a connector (the WebSocket form is at /sub on the connector port); 0 = off.', parse: port },
  connectorUrl: { env: 'CONNECTOR_PUBLIC_URL', default: '', doc: 'URL clients use to reach this connector (what the router hands out); empty = http://HOST:PORT it listens on.', parse: optional },
  cluster: { env: 'DANMAKU_CLUSTER', default: 'main', doc: 'Name of the connector registry and routing config in Redis: routers, pushers and connectors of one deployment share it.' },
  anonViewers: { env: 'DANMAKU_ANON_VIEWERS', default: 'true', doc: 'Whether sockets without a token may connect (read-only: join, no send).', parse: boolean },
  pushBigRoom: { env: 'DANMAKU_PUSH_BIG_ROOM', default: '500', doc: 'Subscribers (all connectors) at which the pusher switches a room from notify/pull to broadcast.', parse: positiveInt },
  pushSmallRoom: { env: 'DANMAKU_PUSH_SMALL_ROOM', default: '400', doc: 'Subscribers at or below which a broadcast room goes back to notify/pull (hysteresis).', parse: positiveInt },
  pushMergeMs: { env: 'DANMAKU_PUSH_MERGE_MS', default: '100', doc: 'A connector sends a room at most one `messages` packet per this many ms, merging what arrived meanwhile.', parse: positiveInt },
  pushBigMergeMs: { env: 'DANMAKU_PUSH_BIG_MERGE_MS', default: '200', doc: 'The merge window of a room with at least DANMAKU_PUSH_BIG_ROOM sockets on one connector: each packet costs a write per socket, so big rooms merge longer.', parse: positiveInt },
  pushNotifyDelayMs: { env: 'DANMAKU_PUSH_NOTIFY_DELAY_MS', default: '5', doc: 'A connector waits this long after a notify before it pulls (the pusher before it reads a big room), so close advances cost one read.', parse: positiveInt },
  pushSweepMs: { env: 'DANMAKU_PUSH_SWEEP_MS', default: '3000', doc: 'A connector pulls each of its rooms at least this often, so a lost notify delays but never loses.', parse: positiveInt },
  socketPingMs: { env: 'DANMAKU_SOCKET_PING_MS', default: '25000', doc: 'socket.io heartbeat interval: keeps mobile NAT mappings open and finds dead links.', parse: positiveInt },
  socketPingTimeoutMs: { env: 'DANMAKU_SOCKET_PING_TIMEOUT_MS', default: '20000', doc: 'A socket that does not answer a heartbeat within this is closed.', parse: positiveInt },
  socketMaxBufferBytes: { env: 'DANMAKU_SOCKET_MAX_BUFFER', default: '1048576', doc: 'A socket whose unsent bytes pass this (a slow consumer) is disconnected.', parse: positiveInt },
  // Pages
  frameAncestors: { env: 'DANMAKU_FRAME_ANCESTORS', default: "'self'", doc: 'Space- or comma-separated CSP frame-ancestors sources allowed to frame the viewer, replay and overlay pages (e.g. "\'self\' https://blog.example"); studio and admin are never framed.', parse: sources },
  logLevel: { env: 'LOG_LEVEL', default: 'info', doc: 'pino log level (fatal, error, warn, info, debug, trace, silent).' },
  corsOrigins: { env: 'DANMAKU_CORS_ORIGINS', default: '', doc: 'Comma-separated origins (https://player.example) that browsers may call the HTTP API and the socket.io endpoint from; `*` = any. Empty: the player routes (/v1/dplayer/, danmaku.xml) answer any origin, the rest of the API none, and socket.io only pages from the same host. Never with credentials.', parse: origins },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
type ValueOf<S> = S extends { parse: Parser<infer T> } ? T : string;

/** Every setting, read and checked. */
export type Config = { -readonly [K in keyof Settings]: ValueOf<Settings[K]> };

/** The settings one role reads (its `settings(config)`), so a role's needs are named in one line. */
export type ConfigSlice<K extends keyof Config> = Pick<Config, K>;

/** Copies the named settings out of a config. */
export function pick<K extends keyof Config>(config: Config, keys: readonly K[]): ConfigSlice<K> {
  const slice = {} as ConfigSlice<K>;
  for (const key of keys) slice[key] = config[key];
  return slice;
}

/** Reads the environment (or `env`), applies defaults and `overrides`, and checks the values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const config: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [string, Setting][]) {
    const value = env[setting.env];
    const text = value === undefined || value === '' ? setting.default : value;
    config[key] = setting.parse ? setting.parse(text, setting.env) : text;
  }
  // Every key of the table was just set from its own entry, which is what Config is derived from.
  return { ...(config as Config), ...overrides };
}

export function isDefaultSecret(config: Pick<Config, 'jwtSecret'>): boolean {
  return config.jwtSecret === SETTINGS.jwtSecret.default;
}

/** NODE_ENV=production, as every Node tool reads it. */
export function isProduction(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NODE_ENV === 'production';
}

/** Loopback only: 127.0.0.0/8, ::1, localhost. Anything else (0.0.0.0, ::, a LAN address) is reachable. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * Whether development conveniences (the dev-token route) may exist: the public default secret,
 * outside production. With a real secret or NODE_ENV=production they are gone.
 */
export function isDevelopment(config: Pick<Config, 'jwtSecret'>, env: NodeJS.ProcessEnv = process.env): boolean {
  return isDefaultSecret(config) && !isProduction(env);
}

/**
 * Why this process must not start, or null. The default secret is in the source, so anyone who
 * reads it can sign admin tokens: acceptable on loopback during development, never in production
 * or on an address others can reach.
 */
export function unsafeStartReason(config: Pick<Config, 'jwtSecret' | 'host'>, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!isDefaultSecret(config)) return null;
  const why = isProduction(env) ? 'NODE_ENV is production' : !isLoopbackHost(config.host) ? `HOST is ${config.host}, not a loopback address` : null;
  if (!why) return null;
  return (
    `Refusing to start: DANMAKU_JWT_SECRET is the public development default and ${why}. ` +
    'Anyone could sign admin tokens with it. Set DANMAKU_JWT_SECRET to a long random secret ' +
    '(e.g. `openssl rand -hex 32`), the same for every role of the deployment.'
  );
}

/**
 * For a role's main: prints the reason on stderr and exits 1 when the start is unsafe; else, given
 * `warn`, a warning on the default secret.
 */
export function refuseUnsafeStart(config: Pick<Config, 'jwtSecret' | 'host'>, warn: ((text: string) => void) | null = null, env: NodeJS.ProcessEnv = process.env): void {
  const reason = unsafeStartReason(config, env);
  if (reason) {
    process.stderr.write(`${reason}\n`);
    process.exit(1);
  }
  if (warn && isDefaultSecret(config)) warn('DANMAKU_JWT_SECRET is the development default (fine on loopback in development; set your own elsewhere)');
}

/** The settings table as Markdown, for `npm run config`. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s) => `| \`${s.env}\` | \`${s.default}\` | ${s.doc} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
