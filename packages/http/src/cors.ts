import type { IncomingHttpHeaders } from 'node:http';

/**
 * Who may call from a browser on another site (DANMAKU_CORS_ORIGINS). No route reads cookies, so
 * credentials are never allowed: a token travels in a header or body the caller chose to send.
 */

/** Routes web players on other sites load: open to any origin unless an allow-list is set. */
const PLAYER_ROUTE = /^\/v1\/(?:dplayer\/|lives\/[^/?]+\/danmaku\.xml(?:[?]|$))/;

export function isPlayerRoute(url: string): boolean {
  return PLAYER_ROUTE.test(url);
}

/** The `origin` option of the cors middleware: '*', the allowed list, or false (no CORS headers). */
export function corsOrigin(origins: readonly string[], url: string): '*' | string[] | false {
  if (origins.includes('*')) return '*';
  if (origins.length > 0) return [...origins];
  return isPlayerRoute(url) ? '*' : false;
}

export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];
export const CORS_HEADERS = ['Content-Type', 'Authorization'];

interface SocketCorsOptions {
  origin: boolean | string | string[];
  credentials: false;
  methods: string[];
}

function hostname(text: string | undefined): string | null {
  if (!text) return null;
  try {
    return new URL(text.includes('://') ? text : `http://${text}`).hostname;
  } catch {
    return null;
  }
}

/**
 * The socket.io server's `cors` option (a per-request delegate of the cors middleware). With no
 * allow-list, a page may connect from the host the socket endpoint is reached at, on any port:
 * the front's pages (port 8080) reach a connector on its own port, while other sites are refused.
 */
export function socketCors(origins: readonly string[]) {
  return (req: { headers: IncomingHttpHeaders }, callback: (err: Error | null, options?: SocketCorsOptions) => void): void => {
    const base = { credentials: false as const, methods: ['GET', 'POST'] };
    if (origins.includes('*')) return callback(null, { ...base, origin: '*' });
    if (origins.length > 0) return callback(null, { ...base, origin: [...origins] });
    const origin = req.headers.origin;
    const same = origin !== undefined && hostname(origin) !== null && hostname(origin) === hostname(req.headers.host);
    callback(null, { ...base, origin: same ? origin : false });
  };
}
