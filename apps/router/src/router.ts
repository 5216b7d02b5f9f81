import type { Auth } from '@danmaku/auth';
import { authPlugin, restricted, type FastifyInstance } from '@danmaku/http';
import { hash32 } from '@danmaku/model';
import { NO_CONTROL_CHARS, type RouteAnswer } from '@danmaku/protocol';
import { counter } from '@danmaku/observability';
import { liveConnectors, pushKeys, type ConnectorInfo } from '@danmaku/push';
import { guard, type Redis } from '@danmaku/store';

/** A black or white list: a client matches when any of its ids or its app version is listed. */
export interface RouteLists {
  uids: string[];
  deviceIds: string[];
  /** Exact versions ("2.3.1"), prefixes ending in "*" ("2.3.*"), or "<2.0.0" (every older version). */
  versions: string[];
}

/** The routing config operators change at run time (stored in Redis, shared by every router). */
export interface RouteConfig {
  /** Long connections on at all (the whitelist still gets them when off). */
  enabled: boolean;
  /** Gray release: share of clients (by a stable hash of uid, else device id) sent long, 0..100. */
  percent: number;
  /** What short-mode clients are told to wait between polls. */
  pollIntervalMs: number;
  blacklist: RouteLists;
  whitelist: RouteLists;
}

export const DEFAULT_ROUTE_CONFIG: RouteConfig = {
  enabled: true,
  percent: 100,
  pollIntervalMs: 2000,
  blacklist: { uids: [], deviceIds: [], versions: [] },
  whitelist: { uids: [], deviceIds: [], versions: [] },
};

const listSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    uids: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROL_CHARS } },
    deviceIds: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 128, pattern: NO_CONTROL_CHARS } },
    versions: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^(<=?|>=?)?[0-9A-Za-z._-]{1,32}\\*?$' } },
  },
} as const;

/** Body of `PUT /v1/admin/route-config`: any subset; lists given replace the stored ones. */
export const routeConfigPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    enabled: { type: 'boolean' },
    percent: { type: 'integer', minimum: 0, maximum: 100 },
    pollIntervalMs: { type: 'integer', minimum: 500, maximum: 600_000 },
    blacklist: listSchema,
    whitelist: listSchema,
  },
} as const;

export const routeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    uid: { type: 'string', maxLength: 64, pattern: NO_CONTROL_CHARS },
    deviceId: { type: 'string', maxLength: 128, pattern: NO_CONTROL_CHARS },
    version: { type: 'string', maxLength: 32, pattern: NO_CONTROL_CHARS },
  },
} as const;

export interface RouteQuery {
  uid?: string;
  deviceId?: string;
  version?: string;
}

/** A 32-bit hash with its bits well mixed (FNV-1a, then murmur3's finaliser): near-uniform even for similar keys. */
function mixedHash(text: string): number {
  let h = hash32(text);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The connectors in the order one client should try them: weighted rendezvous hashing of the
 * client over the live, non-draining connectors. Each connector scores -w / ln(h), h a hash of
 * (client, connector) in (0, 1), so a client's first choice is connector i with probability
 * w_i / sum(w): stable for the same client, spread over every connector for many, and when a
 * connector dies only its own clients move, over all the survivors. The weight falls with load
 * (w = 1 / (1 + sockets / mean sockets)): an idle connector draws about twice the share of one at
 * the mean, but not every client, as "least loaded first" would after a peer's death.
 */
export function rankConnectors(client: string, connectors: readonly ConnectorInfo[]): ConnectorInfo[] {
  if (connectors.length <= 1) return [...connectors];
  const mean = connectors.reduce((sum, c) => sum + c.sockets, 0) / connectors.length;
  const scored = connectors.map((c) => {
    const weight = 1 / (1 + c.sockets / (mean + 1));
    const h = (mixedHash(`${client}\n${c.id}`) + 0.5) / 2 ** 32;
    return { c, score: -weight / Math.log(h) };
  });
  return scored.sort((a, b) => b.score - a.score || a.c.id.localeCompare(b.c.id)).map((s) => s.c);
}

/** The Bilibili endpoints of live connectors, least loaded first. */
export function bilibiliEndpoints(connectors: readonly ConnectorInfo[]): { ws: string[]; tcp: string[] } {
  const ws: string[] = [];
  const tcp: string[] = [];
  for (const c of connectors) {
    if (c.bilibili?.ws) ws.push(c.bilibili.ws);
    if (c.bilibili?.tcp) tcp.push(c.bilibili.tcp);
  }
  // A connector of several workers registers each: one endpoint, listed once.
  return { ws: [...new Set(ws)], tcp: [...new Set(tcp)] };
}

const routes = counter<'mode' | 'reason'>({ name: 'danmaku_router_routes_total', help: 'Route answers, by mode and reason', labelNames: ['mode', 'reason'] });

function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const diff = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x.localeCompare(y);
    if (diff !== 0) return diff;
  }
  return 0;
}

export function versionMatches(pattern: string, version: string): boolean {
  if (version === '') return false;
  const op = /^(<=?|>=?)/.exec(pattern)?.[0];
  if (op) {
    const c = compareVersions(version, pattern.slice(op.length));
    return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
  }
  if (pattern.endsWith('*')) return version.startsWith(pattern.slice(0, -1));
  return pattern === version;
}

function listed(list: RouteLists, q: RouteQuery): boolean {
  return (
    (q.uid !== undefined && q.uid !== '' && list.uids.includes(q.uid)) ||
    (q.deviceId !== undefined && q.deviceId !== '' && list.deviceIds.includes(q.deviceId)) ||
    (q.version !== undefined && list.versions.some((p) => versionMatches(p, q.version as string)))
  );
}

/** The gray bucket (0..99) of a client: stable per uid, else per device. */
export function grayBucket(q: RouteQuery): number {
  const who = q.uid || q.deviceId || '';
  return hash32(`gray:${who}`) % 100;
}

/**
 * Meipai's rules, in order: blacklisted -> short (never long); whitelisted -> long (even when
 * long connections are off, forced off, or the client is outside the gray); off or forced
 * polling -> short; else long when the client's bucket is inside the gray percentage.
 */
export function decideRoute(config: RouteConfig, q: RouteQuery, endpoints: string[], forcePolling: boolean): RouteAnswer {
  const short = (reason: string): RouteAnswer => ({ mode: 'short', endpoints: [], pollIntervalMs: config.pollIntervalMs, reason });
  const long = (reason: string): RouteAnswer =>
    endpoints.length > 0 ? { mode: 'long', endpoints, pollIntervalMs: config.pollIntervalMs, reason } : short('no_connectors');
  if (listed(config.blacklist, q)) return short('blacklist');
  if (listed(config.whitelist, q)) return long('whitelist');
  if (forcePolling) return short('forced_polling');
  if (!config.enabled) return short('disabled');
  if (grayBucket(q) < config.percent) return long('gray');
  return short('outside_gray');
}

function parseConfig(text: string | null): RouteConfig {
  if (!text) return structuredClone(DEFAULT_ROUTE_CONFIG);
  try {
    const stored = JSON.parse(text) as Partial<RouteConfig>;
    return {
      ...structuredClone(DEFAULT_ROUTE_CONFIG),
      ...stored,
      blacklist: { ...DEFAULT_ROUTE_CONFIG.blacklist, ...stored.blacklist },
      whitelist: { ...DEFAULT_ROUTE_CONFIG.whitelist, ...stored.whitelist },
    };
  } catch {
    return structuredClone(DEFAULT_ROUTE_CONFIG);
  }
}

export interface RouterDeps {
  redis: Redis;
  cluster: string;
  auth: Auth;
  /** The degrade switch "force polling", when the process has a switchboard. */
  forcePolling?: () => boolean;
  /** A floor for pollIntervalMs from the degrade switches (0 = none). */
  minPollIntervalMs?: () => number;
  /** How long a router serves its cached config and connector list. */
  cacheMs?: number;
}

/**
 * The routing service as a plugin: `GET /v1/route` and the operators' `GET|PUT /v1/admin/route-config`
 * (admin token). Config and the connector list come from Redis, cached for about a second, so a
 * route answer costs no Redis call on the hot path.
 */
export async function routerRoutes(app: FastifyInstance, deps: RouterDeps): Promise<void> {
  const cacheMs = deps.cacheMs ?? 1000;
  const key = pushKeys.routeConfig(deps.cluster);
  let cached: { config: RouteConfig; connectors: ConnectorInfo[]; at: number } | null = null;
  let loading: Promise<{ config: RouteConfig; connectors: ConnectorInfo[] }> | null = null;

  const load = async (): Promise<{ config: RouteConfig; connectors: ConnectorInfo[] }> => {
    if (cached && Date.now() - cached.at < cacheMs) return cached;
    loading ??= (async () => {
      try {
        const [text, connectors] = await guard(() => Promise.all([deps.redis.get(key), liveConnectors(deps.redis, deps.cluster)]));
        cached = { config: parseConfig(text), connectors, at: Date.now() };
        return cached;
      } finally {
        loading = null;
      }
    })();
    try {
      return await loading;
    } catch (err) {
      // Redis down: keep routing from the last known state rather than failing every client.
      if (cached) return cached;
      throw err;
    }
  };

  app.get<{ Querystring: RouteQuery }>('/v1/route', { schema: { querystring: routeQuerySchema } }, async (request) => {
    const { config, connectors } = await load();
    // A draining connector (SIGTERM) still serves its sockets while they move, but takes no new ones.
    const offered = connectors.filter((c) => !c.draining);
    // Clients without an id are spread at random (by the same weights).
    const client = request.query.uid || request.query.deviceId || `anon:${Math.random()}`;
    // The workers of one connector (DANMAKU_CONNECTOR_WORKERS) are nodes of one URL: listed once, where its first ranks.
    const answer = decideRoute(config, request.query, [...new Set(rankConnectors(client, offered).map((c) => c.url))], deps.forcePolling?.() ?? false);
    answer.pollIntervalMs = Math.max(answer.pollIntervalMs, deps.minPollIntervalMs?.() ?? 0);
    answer.bilibili = bilibiliEndpoints(offered);
    routes.inc({ mode: answer.mode, reason: answer.reason });
    return answer;
  });

  await app.register(authPlugin, { auth: deps.auth });
  await app.register(
    restricted(
      { role: 'admin', missing: 'This needs an admin token: send "Authorization: Bearer TOKEN".', denied: 'Only admins may change the routing config.' },
      (admin) => {
        admin.get('/v1/admin/route-config', async () => {
          const text = await guard(() => deps.redis.get(key));
          const connectors = await guard(() => liveConnectors(deps.redis, deps.cluster));
          return { config: parseConfig(text), connectors };
        });

        admin.put<{ Body: Partial<RouteConfig> }>('/v1/admin/route-config', { schema: { body: routeConfigPatchSchema } }, async (request) => {
          const current = parseConfig(await guard(() => deps.redis.get(key)));
          const patch = request.body;
          const next: RouteConfig = {
            ...current,
            ...patch,
            blacklist: { ...current.blacklist, ...patch.blacklist },
            whitelist: { ...current.whitelist, ...patch.whitelist },
          };
          await guard(() => deps.redis.set(key, JSON.stringify(next)));
          cached = null;
          return { config: next };
        });
      },
    ),
  );
}
