import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Ajv, type ErrorObject } from 'ajv';
import { ApiError, LIMITS } from '@danmaku/model';
import { BusUnavailableError } from '@danmaku/bus';
import { counter, metricsText, type Logger } from '@danmaku/observability';
import { CORS_HEADERS, CORS_METHODS, corsOrigin } from './cors.js';

export { corsOrigin, isPlayerRoute, socketCors } from './cors.js';

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
    default:
      return `${capitalise(where)} ${first.message ?? 'is not valid'}.`;
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', `The body is too large (at most ${LIMITS.bodyMaxBytes} bytes).`],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Send the body as application/json.'],
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

/**
 * A Fastify server with the project's conventions: strict validation, the error shape on every
 * error and unknown route, `/metrics`, `/healthz`. Each app adds its own routes and `/readyz`.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps the instance type the plain default.
    loggerInstance: options.logger as FastifyBaseLogger,
    // A log line per request costs more than the request on the hot paths; errors still log.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? LIMITS.bodyMaxBytes,
    trustProxy: options.trustProxy ?? false,
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500 && apiError.status !== 503) request.log.error({ err }, 'request failed');
    httpErrors.inc({ app: options.app, status: String(apiError.status), code: apiError.code });
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError(404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );

  options.beforeRoutes?.(app);
  const origins = options.corsOrigins ?? [];
  void app.register(cors, {
    delegator: (request, callback) => {
      callback(null, { origin: corsOrigin(origins, request.url ?? '/'), credentials: false, methods: CORS_METHODS, allowedHeaders: CORS_HEADERS, exposedHeaders: ['Retry-After'], maxAge: 600 });
    },
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metricsText();
    return reply.type(contentType).send(body);
  });
  return app;
}

/** `/readyz`: 200 when every check passes, else 503 naming the failing dependencies. */
export function readinessRoute(app: FastifyInstance, checks: Record<string, () => Promise<boolean> | boolean>): void {
  app.get('/readyz', async (_request, reply) => {
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
