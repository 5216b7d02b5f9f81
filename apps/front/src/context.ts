import type { Auth, Principal } from '@danmaku/auth';
import type { Bus } from '@danmaku/bus';
import type { Ingest } from '@danmaku/ingest';
import { ApiError } from '@danmaku/model';
import type { RedisStore } from '@danmaku/store';
import type { Switchboard } from '@danmaku/switches';
import type { FastifyRequest } from '@danmaku/http';
import type { ReplayStack } from '@danmaku/archive';
import type { Moderation } from '@danmaku/moderation';
import type { FrontSettings } from './role.js';

/** What the front's routes share; built once by whoever wires the app (main or standalone). */
export interface FrontDeps {
  /** The settings the front's routes read (its slice of the config). */
  config: FrontSettings;
  store: RedisStore;
  bus: Bus;
  auth: Auth;
  /** The write path (validation checks, stamp, produce); shared with the connector. */
  ingest: Ingest;
  /**
   * Degrade switches and gears: pass the one the ingest's partitioner and read-only check use,
   * so a switch flips every surface at once; buildFront makes its own when absent.
   */
  switches?: Switchboard;
  /**
   * Lives, the MySQL archive and the replay reader (openReplay in @danmaku/archive): without it
   * the live and replay routes answer 503 and rooms show `live: null`.
   */
  replay?: ReplayStack;
  /** Mutes, bans, slow mode, pinned notice; its checks are among the ingest's. */
  moderation?: Moderation;
}

/** The caller of a write: a token is required (API.md, Auth). */
export function requireUser(deps: FrontDeps, request: FastifyRequest): Principal {
  const principal = deps.auth.fromHeader(request.headers.authorization);
  if (!principal) throw new ApiError(401, 'missing_token', 'This needs a token: send "Authorization: Bearer TOKEN".');
  return principal;
}
