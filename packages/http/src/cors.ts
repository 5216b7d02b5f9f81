import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HookHandlerDoneFunction } from 'fastify';

/**
 * Who may call from a browser on another site (DANMAKU_CORS_ORIGINS). No route reads cookies, so
 * credentials are never allowed: a token travels in a header or body the caller chose to send.
 */

/** Routes web players on other sites load: open to any origin unless an allow-list is set. */
const PLAYER_ROUTE = /^\/v1\/(?:dplayer\/|lives\/[^/?]+\/danmaku\.(?:xml|ass)(?:[?]|$))/;

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

// Each header value is built once: the answer depends only on the origin mode and the request's
// Origin, never on options read per request.
const ALLOW_METHODS = CORS_METHODS.join(', ');
const ALLOW_HEADERS = CORS_HEADERS.join(', ');
const EXPOSE_HEADERS = 'Retry-After';
const MAX_AGE = '600';

/** Adds Origin to Vary, keeping what is there (an earlier hook's value, or `*`). */
function varyOrigin(reply: FastifyReply): void {
  const current = reply.getHeader('vary');
  if (current === undefined || current === '') {
    void reply.header('Vary', 'Origin');
    return;
  }
  const text = Array.isArray(current) ? current.join(', ') : String(current);
  const names = text.split(',').map((name) => name.trim().toLowerCase());
  if (names.includes('*') || names.includes('origin')) return;
  void reply.header('Vary', `${text}, Origin`);
}

type Headers = Readonly<Record<string, string>>;

/** The CORS headers of an answer, by URL and Origin (see corsAnswer). */
export type CorsAnswer = (url: string, origin: string | undefined) => { headers: Headers; preflight: boolean };

/**
 * The CORS headers of an answer that is not a preflight, by URL and the request's Origin, as
 * @fastify/cors gave them with the options corsOrigin() picks (credentials off, Retry-After
 * exposed): `Vary: Origin` always; with '*' Allow-Origin `*`; with a list the request's Origin
 * when listed; with false nothing more. `preflight` says whether an OPTIONS request is answered
 * as one. Every object is built here once; the caller must not change them.
 */
export function corsAnswer(origins: readonly string[]): CorsAnswer {
  const off = { headers: Object.freeze({ vary: 'Origin' }), preflight: false };
  const any = { headers: Object.freeze({ vary: 'Origin', 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSE_HEADERS }), preflight: true };
  if (origins.includes('*')) return () => any;
  if (origins.length > 0) {
    const unlisted = { headers: Object.freeze({ vary: 'Origin', 'access-control-expose-headers': EXPOSE_HEADERS }), preflight: true };
    const listed = new Map(
      origins.map((origin) => [origin, { headers: Object.freeze({ vary: 'Origin', 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSE_HEADERS }), preflight: true }]),
    );
    return (_url, origin) => (origin === undefined ? unlisted : (listed.get(origin) ?? unlisted));
  }
  return (url) => (isPlayerRoute(url) ? any : off);
}

/**
 * CORS for every route of `app` (see corsAnswer), without building and normalising options on
 * every request as @fastify/cors did; preflights are strict (Origin and
 * Access-Control-Request-Method required, else 400) and answered 204 in the hook.
 */
export function corsHooks(app: FastifyInstance, answer: CorsAnswer): void {
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const { headers, preflight } = answer(request.url, request.headers.origin);
    varyOrigin(reply);
    for (const name in headers) {
      if (name !== 'vary') void reply.header(name, headers[name]);
    }
    if (!preflight || request.raw.method !== 'OPTIONS') {
      done();
      return;
    }
    if (!request.headers.origin || !request.headers['access-control-request-method']) {
      void reply.status(400).type('text/plain').send('Invalid Preflight Request');
      return;
    }
    void reply
      .header('Access-Control-Allow-Methods', ALLOW_METHODS)
      .header('Access-Control-Allow-Headers', ALLOW_HEADERS)
      .header('Access-Control-Max-Age', MAX_AGE)
      .code(204)
      .header('Content-Length', '0')
      .send();
  });
  // Lets OPTIONS reach the hook on every path; a preflight the hook did not answer (CORS off
  // for that route) is a 404 like any unknown route.
  // `hide` is @fastify/swagger's key (kept out of the API document); Fastify's schema type lacks it.
  const hidden = { hide: true } as FastifySchema;
  app.options('*', { schema: hidden }, (_request, reply) => {
    reply.callNotFound();
  });
}

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
