import { createServer, type IncomingMessage, type Server as HttpServer, type ServerOptions, type ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyServerFactory } from 'fastify';
import type { CorsAnswer } from './cors.js';

/**
 * A ready answer for a GET, found from the request line alone (no routing, no parsing), or
 * undefined to let the request take the ordinary path through Fastify.
 */
export type EarlyAnswer = (url: string, req: IncomingMessage) => { contentType: string; body: Buffer } | undefined;

/** What the server factory's dispatcher reads; filled in once the app exists. */
export interface EarlyState {
  cors: CorsAnswer;
  answers: EarlyAnswer[];
  closing: boolean;
}

const states = new WeakMap<HttpServer, EarlyState>();

/**
 * Fastify's `serverFactory`: the HTTP server with a dispatcher in front of Fastify's handler. A
 * GET an early answerer knows is written here, with the headers Fastify's path would give it
 * (`cors`: the same answers createHttpServer's CORS hook gives, Content-Type, Content-Length);
 * anything else goes to Fastify unchanged. socket.io, when it attaches to this server later,
 * puts its own path in front of the whole listener, as it does for any server.
 */
export function earlyServerFactory(state: EarlyState, http: ServerOptions): FastifyServerFactory {
  return (handler, options) => {
    const server = createServer(http, (req: IncomingMessage, res: ServerResponse) => {
      if (state.answers.length > 0 && !state.closing && req.method === 'GET' && answerEarly(state, req, res)) return;
      handler(req, res);
    });
    // What Fastify sets on the servers it makes itself (a factory's server is left as it comes);
    // `options` are Fastify's, defaults applied.
    const setting = (name: string): number | undefined => (typeof options[name] === 'number' ? (options[name] as number) : undefined);
    server.keepAliveTimeout = setting('keepAliveTimeout') ?? server.keepAliveTimeout;
    server.requestTimeout = setting('requestTimeout') ?? server.requestTimeout;
    server.setTimeout(setting('connectionTimeout') ?? 0);
    const perSocket = setting('maxRequestsPerSocket');
    if (perSocket !== undefined && perSocket > 0) server.maxRequestsPerSocket = perSocket;
    states.set(server, state);
    return server;
  };
}

/** Called by createHttpServer once the app exists. */
export function watchClosing(app: FastifyInstance, state: EarlyState): void {
  // Fastify answers 503 with `Connection: close` once closing; leave that to it.
  app.addHook('preClose', (done) => {
    state.closing = true;
    done();
  });
}

/** The CORS headers of one origin mode as pairs, listed once per mode (corsAnswer's objects are few and kept). */
const pairs = new WeakMap<object, string[][]>();
function pairsOf(headers: Readonly<Record<string, string>>): string[][] {
  let list = pairs.get(headers);
  if (!list) {
    list = Object.entries(headers);
    pairs.set(headers, list);
  }
  return list;
}

function answerEarly(state: EarlyState, req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url;
  if (url === undefined) return false;
  // The Host check of createHttpServer's first hook: that error answer is Fastify's to give.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) return false;
  for (const answer of state.answers) {
    const ready = answer(url, req);
    if (ready === undefined) continue;
    const head = pairsOf(state.cors(url, req.headers.origin).headers).slice();
    head.push(['content-type', ready.contentType], ['content-length', String(ready.body.length)]);
    // Name-value pairs, in the order Fastify's path writes them (a list, not an object: Node reads
    // it without a keyed lookup per header).
    res.writeHead(200, head);
    res.end(ready.body);
    return true;
  }
  return false;
}

/**
 * Registers an early answerer on the server of `app` (made by createHttpServer). Only for
 * answers that are exactly what the route would send: a hit skips routing, validation, every
 * hook and the handler.
 */
export function answerEarlyFor(app: FastifyInstance, answer: EarlyAnswer): void {
  const state = states.get(app.server as HttpServer);
  if (!state) throw new Error('answerEarlyFor needs a server made by createHttpServer');
  state.answers.push(answer);
}
