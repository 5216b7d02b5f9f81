/**
 * Who may call what, in one place. The auth plugin gives every request its `principal` (read from
 * `Authorization: Bearer` on first use, so routes that never look at it ignore a bad token); a
 * route plugin puts its guarded routes in a child context made by `restricted`, whose preHandler
 * hook (after validation, so a bad request is a 400 before it is a 401) admits only callers with
 * the access asked for.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canModerate, type Auth, type Principal } from '@danmaku/auth';
import { ApiError } from '@danmaku/model';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, verified on first read; null without an Authorization header; a bad token throws 401. */
    readonly principal: Principal | null;
    /** The caller, who must be there: 401 missing_token when not (always there behind `restricted`). */
    readonly user: Principal;
  }
}

const MISSING_TOKEN = 'This needs a token: send "Authorization: Bearer TOKEN".';

/** A verified principal, or the error its token got, per request (read once). */
const seen = new WeakMap<FastifyRequest, { principal: Principal | null } | { error: unknown }>();

function principalOf(auth: Auth, request: FastifyRequest): Principal | null {
  let entry = seen.get(request);
  if (!entry) {
    try {
      entry = { principal: auth.fromHeader(request.headers.authorization) };
    } catch (error) {
      entry = { error };
    }
    seen.set(request, entry);
  }
  if ('error' in entry) throw entry.error;
  return entry.principal;
}

/** Registers once per server (every context sees it); a second registration is a no-op. */
export const authPlugin = fp<{ auth: Auth }>(
  async (app, { auth }) => {
    if (app.hasRequestDecorator('principal')) return;
    app.decorateRequest('principal', {
      getter(this: FastifyRequest) {
        return principalOf(auth, this);
      },
    });
    app.decorateRequest('user', {
      getter(this: FastifyRequest) {
        const principal = principalOf(auth, this);
        if (!principal) throw new ApiError(401, 'missing_token', MISSING_TOKEN);
        return principal;
      },
    });
  },
  { name: 'danmaku-auth' },
);

export type Access =
  /** Any caller with a valid token. */
  | { role: 'user'; missing?: string }
  /** The streamer who owns the route's `:roomId`, or an admin. */
  | { role: 'moderator'; missing?: string }
  /** Admins only; `denied` says what the caller may not do. */
  | { role: 'admin'; denied: string; missing?: string };

function check(access: Access, request: FastifyRequest): void {
  const principal = request.principal;
  if (!principal) throw new ApiError(401, 'missing_token', access.missing ?? MISSING_TOKEN);
  if (access.role === 'moderator') {
    const roomId = (request.params as { roomId?: string } | undefined)?.roomId ?? '';
    if (!canModerate(principal, roomId)) throw new ApiError(403, 'forbidden', `Only the streamer of room ${roomId} or an admin may do this.`);
  } else if (access.role === 'admin' && principal.role !== 'admin') {
    throw new ApiError(403, 'forbidden', access.denied);
  }
}

/**
 * A child context for routes that only callers with `access` may use: `routes` registers them on
 * the instance it is given. Register the result with `app.register`.
 */
export function restricted(access: Access, routes: (app: FastifyInstance) => void | Promise<void>): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    app.addHook('preHandler', async (request) => check(access, request));
    await routes(app);
  };
}
