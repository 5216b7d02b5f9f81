import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { CorsAnswer } from './cors.js';

/**
 * A ready answer for a GET, found from the request line alone (no routing, no parsing), or
 * undefined to let the request take the ordinary path through Fastify.
 */
export type EarlyAnswer = (url: string, req: IncomingMessage) => { contentType: string; body: Buffer } | undefined;

interface EarlyState {
  cors: CorsAnswer;
  answers: EarlyAnswer[];
  closing: boolean;
}

const states = new WeakMap<HttpServer, EarlyState>();

/**
 * Puts a dispatcher in front of Fastify's request listener (and any other, such as socket.io's
 * wrapper, added later or before): a GET an early answerer knows is written here, with the
 * headers Fastify's path would give it (`cors`: the same answers createHttpServer's CORS hook
 * gives, Content-Type, Content-Length); anything else goes on unchanged. Called by createHttpServer.
 */
export function installEarlyAnswers(app: FastifyInstance, cors: CorsAnswer): void {
  const server = app.server as HttpServer;
  const state: EarlyState = { cors, answers: [], closing: false };
  states.set(server, state);
  // Fastify answers 503 with `Connection: close` once closing; leave that to it.
  app.addHook('preClose', (done) => {
    state.closing = true;
    done();
  });
  const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (state.answers.length > 0 && !state.closing && req.method === 'GET' && answerEarly(state, req, res)) return;
    for (const listener of listeners) listener.call(server, req, res);
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
