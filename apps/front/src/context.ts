import type { Auth, Principal } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import type { Config } from '@danmaku/config';
import type { Ingest } from '@danmaku/ingest';
import { ApiError } from '@danmaku/model';
import type { RedisStore } from '@danmaku/store';
import type { FastifyRequest } from '@danmaku/http';

/** What the front's routes share; built once by whoever wires the app (main or standalone). */
export interface FrontDeps {
  config: Config;
  store: RedisStore;
  bus: Bus;
  auth: Auth;
  /** The write path (validation checks, stamp, produce); shared with the connector. */
  ingest: Ingest;
}

/** The caller of a write: a token is required (API.md, Auth). */
export function requireUser(deps: FrontDeps, request: FastifyRequest): Principal {
  const principal = deps.auth.fromHeader(request.headers.authorization);
  if (!principal) throw new ApiError(401, 'missing_token', 'This needs a token: send "Authorization: Bearer TOKEN".');
  return principal;
}
