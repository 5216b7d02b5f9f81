import { STATUS_CODES, ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ApiError } from '@danmaku/model';
import { LIMITS, NO_CONTROL_CHARS } from '@danmaku/protocol';
import { BusUnavailableError } from '@danmaku/bus';
import { counter, metricsText, type Logger } from '@danmaku/observability';
import { corsAnswer, corsHooks } from './cors.js';
import { earlyServerFactory, watchClosing, type EarlyState } from './early.js';
import { lazyRequestLogger } from './request-log.js';

export { corsOrigin, isPlayerRoute, socketCors } from './cors.js';
export { answerEarlyFor, type EarlyAnswer } from './early.js';

/**
 * Connections the kernel queues for a listener before the process accepts them. Node's default of
 * 511 overflows when tens of thousands of clients reconnect at once (a connector died, a deploy):
 * the kernel then drops their SYNs and each client waits out a 1-3 s retransmit. The kernel caps
 * it at net.core.somaxconn (4096 on Debian).
 */
export const LISTEN_BACKLOG = 4096;

export interface HttpServerOptions {
  logger: Logger;
  bodyLimit?: number;
  /** Name in the metrics' `app` label. */
  app: string;
  /**
   * Whom to believe in X-Forwarded-For (Fastify's trustProxy). Off by default: a client could
   * otherwise pick its own address and dodge per-IP limits.
   */
  trustProxy?: boolean | string;
  /** DANMAKU_CORS_ORIGINS: origins browsers may call from (`*` = any); none = only the player routes, from anywhere. */
  corsOrigins?: readonly string[];
  /** Runs before the server declares its own routes: what must see every route (an API document). */
  beforeRoutes?: (app: FastifyInstance) => void;
}

const httpErrors = counter<'app' | 'status' | 'code'>({
  name: 'danmaku_http_errors_total',
  help: 'Error answers by status and code',
  labelNames: ['app', 'status', 'code'],
});

// Bodies are checked strictly (a number is not a string); query strings arrive as text, so
// they are coerced. Unknown fields are refused, never silently dropped.
const bodyAjv = new Ajv({ allErrors: false, removeAdditional: false, coerceTypes: false, useDefaults: false });
const queryAjv = new Ajv({ allErrors: false, removeAdditional: false, coerceTypes: true, useDefaults: true });

/**
 * Coercion turns "1e309" into Infinity, which passes an integer check and reaches the route
 * (and Redis, as "Infinity"); text parameters are refused unless every number is finite.
 */
function finiteOnly(validate: ValidateFunction): ValidateFunction {
  const wrapped = ((data: unknown) => {
    const ok = validate(data);
    wrapped.errors = validate.errors;
    if (!ok || typeof data !== 'object' || data === null) return ok;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value === 'number' && !Number.isFinite(value)) {
        wrapped.errors = [{ keyword: 'type', instancePath: `/${key}`, schemaPath: '#/type', params: { type: 'a finite number' }, message: 'must be a finite number' }];
        return false;
      }
    }
    return true;
  }) as ValidateFunction;
  return wrapped;
}

/** A sentence a person understands, from Ajv's first error. */
export function describeValidation(errors: ErrorObject[], part: string): string {
  const first = errors[0];
  if (!first) return `The ${part} is not valid.`;
  const field = first.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '';
  const where = field ? `"${field}" in the ${part}` : `the ${part}`;
  switch (first.keyword) {
    case 'additionalProperties':
      return `Unknown field "${String(first.params.additionalProperty)}" in the ${part}.`;
    case 'required':
      return `Missing field "${String(first.params.missingProperty)}" in the ${part}.`;
    case 'type':
      return `${capitalise(where)} must be ${String(first.params.type)}.`;
    case 'enum':
      return `${capitalise(where)} must be one of: ${(first.params.allowedValues as unknown[]).join(', ')}.`;
    case 'maxLength':
      return `${capitalise(where)} is too long (at most ${String(first.params.limit)} characters).`;
    case 'minLength':
      return `${capitalise(where)} must not be empty.`;
    case 'pattern':
      return first.params.pattern === NO_CONTROL_CHARS
        ? `${capitalise(where)} must not contain control characters (NUL, newlines, escapes, direction overrides).`
        : `${capitalise(where)} has characters or a form that is not allowed.`;
    default:
      return `${capitalise(where)} ${first.message ?? 'is not valid'}.`;
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', `The body is too large (at most ${LIMITS.bodyMaxBytes} bytes).`],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Send the body as application/json (a danmaku file import: application/xml).'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'malformed_json', 'The body is empty; send a JSON object.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_json', 'The body is not valid JSON.'],
};

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.retryAfter !== undefined) void reply.header('Retry-After', String(err.retryAfter));
  return reply.code(err.status).send(err.toBody());
}

/** Turns anything thrown on a request path into the API.md error shape. */
export function toApiError(err: FastifyError | Error): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BusUnavailableError) {
    return new ApiError(503, 'bus_unavailable', 'Messages cannot be accepted right now; try again shortly.', 1);
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const part = fe.validationContext === 'querystring' ? 'query string' : fe.validationContext === 'params' ? 'path' : 'body';
    return new ApiError(400, 'invalid_request', describeValidation(fe.validation as ErrorObject[], part));
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) return new ApiError(known[0], known[1], known[2]);
  if (err instanceof SyntaxError || fe.statusCode === 400) {
    return new ApiError(400, 'malformed_json', 'The body is not valid JSON.');
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.statusCode, 'bad_request', fe.message);
  }
  return new ApiError(500, 'internal_error', 'Something went wrong on our side; it has been logged.');
}

/** What Node's HTTP parser (llhttp) reports, as the status and code a client gets. */
const PARSER_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'The request headers are too large.'],
  HPE_INVALID_METHOD: [400, 'bad_request', 'The request method is not one HTTP knows.'],
  HPE_INVALID_URL: [400, 'bad_request', 'The request target is not a valid URL.'],
  HPE_INVALID_HEADER_TOKEN: [400, 'bad_request', 'A header name or value has characters HTTP does not allow.'],
  HPE_INVALID_CHUNK_SIZE: [400, 'bad_request', 'The chunked body is malformed.'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [400, 'bad_request', 'Content-Length and Transfer-Encoding may not both be sent.'],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'bad_request', 'The Transfer-Encoding is not one this server accepts.'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'bad_request', 'The Content-Length is not valid.'],
  HPE_INVALID_VERSION: [400, 'bad_request', 'The HTTP version is not valid.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'The request took too long to arrive.'],
};

/**
 * An error answer written straight to a socket: for errors raised before any request object
 * exists. A HEAD request gets the head alone: a client reads no body after it, so one would
 * arrive as stray bytes after `Connection: close`.
 */
function rawErrorResponse(status: number, code: string, message: string, head = false): string {
  const body = JSON.stringify(new ApiError(status, code, message).toBody());
  const reason = STATUS_CODES[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`;
}

/**
 * Node's parser errors (bad method, control bytes in the request line or a header, broken
 * chunking, Content-Length with Transfer-Encoding, huge headers) never reach a route: this
 * writes them in the API's error shape, then closes the connection, which is not reusable.
 */
export function clientErrorHandler(app: string): (err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, message] = (err.code && PARSER_ERRORS[err.code]) || [400, 'bad_request', 'The request is not valid HTTP.'];
    httpErrors.inc({ app, status: String(status), code });
    // The bad bytes came after a request whose answer is already being written (a body sent
    // without a length, read as the next request): another answer after it would be taken by a
    // kept-alive client as the answer to its next request. Let that one finish, then close.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inFlight?.headersSent) {
      const close = (): void => {
        socket.end();
        setTimeout(() => socket.destroy(), 5000).unref();
      };
      if (inFlight.writableFinished) close();
      else inFlight.once('finish', close).once('close', close);
      return;
    }
    // The bytes the parser choked on; a request line that starts them names the method.
    const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
    if (socket.writable) socket.write(rawErrorResponse(status, code, message, head));
    socket.destroy();
  };
}

/**
 * Errors Fastify raises before routing (a bad percent escape, a path parameter over
 * maxParamLength): in the error shape, like everything else.
 */
function frameworkError(err: FastifyError): ApiError {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new ApiError(400, 'bad_request', 'The path has an invalid percent escape.');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(414, 'uri_too_long', `A path part is longer than ${MAX_PARAM_LENGTH} characters.`);
    default:
      return err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? new ApiError(err.statusCode, 'bad_request', err.message) : toApiError(err);
  }
}

/** Fastify's default; ids in paths are far shorter, so anything longer is refused with 414. */
const MAX_PARAM_LENGTH = 100;

/**
 * A Fastify server with the project's conventions: strict validation, the error shape on every
 * error and unknown route, `/metrics`, `/healthz`. Each app adds its own routes and `/readyz`.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  // One set of CORS answers for the hook and the early path, so both send the same headers.
  const cors = corsAnswer(options.corsOrigins ?? []);
  const early: EarlyState = { cors, answers: [], closing: false };
  const app = Fastify({
    // Node would answer a request without Host itself, with an empty 400; the hook below
    // answers it in the error shape instead. Early answers (answerEarlyFor) go out before Fastify.
    serverFactory: earlyServerFactory(early, { requireHostHeader: false }),
    // pino's Logger is a FastifyBaseLogger; the cast keeps the instance type the plain default.
    loggerInstance: options.logger as FastifyBaseLogger,
    // A log line per request costs more than the request on the hot paths; errors still log.
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's logger (with its reqId) is made on its first line, not for every request.
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: options.bodyLimit ?? LIMITS.bodyMaxBytes,
    trustProxy: options.trustProxy ?? false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: clientErrorHandler(options.app),
    frameworkErrors: (err, _request, reply) => {
      const apiError = frameworkError(err);
      httpErrors.inc({ app: options.app, status: String(apiError.status), code: apiError.code });
      return sendError(reply, apiError);
    },
  });
  // Callback style, not async: every request passes here, and a promise per request is measurable
  // next to a cached poll.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1 && request.headers.host === undefined) {
      done(new ApiError(400, 'bad_request', 'HTTP/1.1 requests need a Host header.'));
      return;
    }
    done();
  });
  // An empty JSON body is "no body" where the route requires no field (a like, enter, leave);
  // where fields are required (a send) it stays the clear 400 malformed_json.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      const schema = request.routeOptions.schema?.body as { required?: unknown[] } | undefined;
      if (!schema?.required?.length) {
        done(null, undefined);
        return;
      }
    }
    parseJson(request, text, done);
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv.compile(schema) : finiteOnly(queryAjv.compile(schema))));

  app.setErrorHandler((err: FastifyError, request, reply) => {
    // A route may take larger bodies than the server's default (a file upload): say its own limit.
    const apiError =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && request.routeOptions.bodyLimit !== undefined
        ? new ApiError(413, 'payload_too_large', `The body is too large (at most ${request.routeOptions.bodyLimit} bytes).`)
        : toApiError(err);
    if (apiError.status >= 500 && apiError.status !== 503) request.log.error({ err }, 'request failed');
    httpErrors.inc({ app: options.app, status: String(apiError.status), code: apiError.code });
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError(404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );

  options.beforeRoutes?.(app);
  corsHooks(app, cors);
  watchClosing(app, early);

  // In a plugin, like every route: registered after what beforeRoutes registered (an API
  // document's generator), they are declared once it has loaded, so its route hook sees them.
  void app.register((instance, _opts, done) => {
    instance.get('/healthz', async () => ({ ok: true }));
    instance.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await metricsText();
      return reply.type(contentType).send(body);
    });
    done();
  });
  return app;
}

/** The parts of an engine.io server (socket.io's `io.engine`) the refusals below read. */
export interface EngineLike {
  /** engine.io's middleware hook: runs before it looks at a request or an upgrade itself. */
  use(middleware: (req: IncomingMessage, res: ServerResponse, next: (err?: Error) => void) => void): void;
  opts: { transports?: readonly string[] };
}

/** An open engine.io session, as the refusals read it (its public `transport` and `protocol`). */
interface EngineSession {
  transport: { name: string };
  protocol: number;
}

/** A header value with characters HTTP does not allow (field-vchar, RFC 9110 5.5). */
const BAD_HEADER_CHARS = /[^\t\x20-\x7e\x80-\xff]/;
/** RFC 6455 4.1: a base64 16-byte nonce. */
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * What engine.io would refuse, found before it sees the request: the same checks, in the same
 * order, as its own (transport, Origin, session, handshake method, protocol version), and for an
 * upgrade the RFC 6455 handshake's, so the refusal is written here in the API's error shape.
 * `clients` is engine.io's documented table of open sessions by id.
 */
function engineRefusal(req: IncomingMessage, upgrade: boolean, transports: readonly string[], clients: Record<string, EngineSession>): [code: string, message: string] | null {
  // engine.io reads the query the same way: the last of repeated names wins.
  const query = Object.fromEntries(new URL(req.url ?? '/', 'http://engine.invalid').searchParams) as Record<string, string | undefined>;
  const transport = query.transport;
  if (transport === undefined || !transports.includes(transport) || transport === 'webtransport') {
    return ['transport_unknown', 'The socket.io transport is not one this server speaks (polling or websocket).'];
  }
  const origin = req.headers.origin;
  if (origin !== undefined && BAD_HEADER_CHARS.test(origin)) return ['bad_request', 'The Origin header has characters HTTP does not allow.'];
  const protocol = query.EIO === '4' ? 4 : 3;
  const sid = query.sid;
  if (sid) {
    const session = Object.hasOwn(clients, sid) ? clients[sid] : undefined;
    if (!session) return ['session_unknown', 'The socket.io session is unknown or has ended; connect again.'];
    if (!upgrade && session.transport.name !== transport) return ['bad_request', 'The transport is not the one of this socket.io session.'];
    if (session.protocol !== protocol) return ['bad_request', 'The Engine.IO protocol version is not the one of this socket.io session.'];
  } else {
    if (req.method !== 'GET') return ['bad_handshake_method', 'A socket.io handshake must be a GET.'];
    if (transport === 'websocket' && !upgrade) return ['bad_request', 'A socket.io WebSocket handshake must be a WebSocket upgrade.'];
    if (protocol !== 4) return ['unsupported_protocol_version', 'The Engine.IO protocol version is not supported (use EIO=4).'];
  }
  if (upgrade) {
    if (req.method !== 'GET') return ['bad_request', 'A WebSocket upgrade must be a GET'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') return ['bad_request', 'Invalid Upgrade header'];
    const key = req.headers['sec-websocket-key'];
    if (key === undefined || !WS_KEY.test(key)) return ['bad_request', 'Missing or invalid Sec-WebSocket-Key header'];
    const version = req.headers['sec-websocket-version'];
    if (version !== '13' && version !== '8') return ['bad_request', 'Missing or invalid Sec-WebSocket-Version header'];
  }
  return null;
}

/**
 * socket.io (engine.io) answers its own refusals before any route, in its own shape (`{ code: 0,
 * message }` on HTTP, a text/html 400 on a refused WebSocket upgrade). This middleware, on
 * engine.io's public hook (`io.engine.use`), finds those refusals first and answers them in the
 * API's error shape; a request it lets through is one engine.io accepts. The contract test
 * (apps/connector/test/internals.test.ts) checks engine.io still refuses each case itself.
 */
export function shapeSocketIoErrors(engine: EngineLike): void {
  const transports = engine.opts.transports ?? ['polling', 'websocket'];
  // Documented in engine.io's README (`clients`: open sessions by id), typed protected.
  const clients = (engine as unknown as { clients: Record<string, EngineSession> }).clients;
  engine.use((req, res, next) => {
    // For an upgrade engine.io passes a stand-in, not a ServerResponse: the answer goes to the socket.
    const upgrade = !(res instanceof ServerResponse);
    const refusal = engineRefusal(req, upgrade, transports, clients);
    if (!refusal) return next();
    const [code, message] = refusal;
    if (!upgrade) {
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(new ApiError(400, code, message).toBody()));
      return;
    }
    const socket = req.socket;
    socket.on('error', () => undefined);
    if (socket.writable) socket.write(rawErrorResponse(400, 'bad_request', `WebSocket upgrade refused: ${message.replace(/\.$/, '')}.`));
    socket.destroy();
  });
}

let draining = false;

/**
 * This process is going away (SIGTERM): from now on every /readyz it serves answers 503
 * `draining`, so load balancers and the router stop sending it work while it finishes what it has.
 * Process-wide on purpose: the roles of one process stop together.
 */
export function startDraining(): void {
  draining = true;
}

export function isDraining(): boolean {
  return draining;
}

/** `/readyz`: 200 when every check passes, else 503 naming the failing dependencies (or `draining`). */
export function readinessRoute(app: FastifyInstance, checks: Record<string, () => Promise<boolean> | boolean>): void {
  // A plugin, so an API document registered before it sees the route (see createHttpServer).
  void app.register((instance, _opts, done) => {
    declareReadiness(instance, checks);
    done();
  });
}

function declareReadiness(app: FastifyInstance, checks: Record<string, () => Promise<boolean> | boolean>): void {
  app.get('/readyz', async (_request, reply) => {
    if (draining) return sendError(reply, new ApiError(503, 'draining', 'Draining: this process is shutting down.', 1));
    const results: Record<string, boolean> = {};
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          results[name] = await check();
        } catch {
          results[name] = false;
        }
      }),
    );
    const down = Object.keys(results).filter((name) => !results[name]);
    if (down.length === 0) return { ready: true, checks: results };
    return sendError(reply, new ApiError(503, 'not_ready', `Not ready: ${down.join(', ')} unavailable.`, 1));
  });
}

export type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
export { authPlugin, restricted, type Access } from './access.js';

export interface OwnPort {
  app: FastifyInstance;
  /** http://host:port it listens on (the real port when 0 was asked). */
  url: string;
  close(): Promise<void>;
}

/**
 * The HTTP server of a role that runs alone: /metrics, /healthz, /readyz with the role's checks,
 * plus whatever `routes` adds. Roles in standalone have none: the front's port answers for the process.
 */
export async function listenOwnPort(options: {
  name: string;
  logger: Logger;
  host: string;
  port: number;
  /** DANMAKU_CORS_ORIGINS, for a role whose port serves an API to browsers. */
  corsOrigins?: readonly string[];
  checks: Record<string, () => Promise<boolean> | boolean>;
  routes?: (app: FastifyInstance) => void;
  /**
   * The URL a cluster primary listens on: it hands this process the connections (its server's
   * `connection` event), so the app is made ready but does not listen itself.
   */
  handedFrom?: string;
}): Promise<OwnPort> {
  const app = createHttpServer({ logger: options.logger, app: options.name, corsOrigins: options.corsOrigins });
  readinessRoute(app, options.checks);
  options.routes?.(app);
  if (options.handedFrom) {
    await app.ready();
    return { app, url: options.handedFrom, close: () => app.close() };
  }
  await app.listen({ host: options.host, port: options.port, backlog: LISTEN_BACKLOG });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { app, url: `http://${options.host}:${port}`, close: () => app.close() };
}
