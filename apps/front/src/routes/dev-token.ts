import { randomBytes } from 'node:crypto';
import type { Role } from '@danmaku/auth';
import { isDevelopment } from '@danmaku/config';
import { ApiError } from '@danmaku/model';
import { NO_CONTROL_CHARS } from '@danmaku/protocol';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontDeps } from '../context.js';

// Never admin: a dev token is for trying the viewer and studio pages, not for operating.
const DEV_ROLES: readonly Role[] = ['viewer', 'streamer'];

const devTokenSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 32, pattern: NO_CONTROL_CHARS },
    role: { type: 'string', enum: DEV_ROLES },
    rooms: { type: 'array', maxItems: 20, items: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
  },
} as const;

/** The pages' "Get a dev token" button. */
export function devTokenRoutes(app: FastifyInstance, deps: FrontDeps): void {
  // Development only (the public default secret, outside NODE_ENV=production): anyone can sign
  // tokens with that secret anyway; elsewhere this endpoint does not exist.
  app.post<{ Body: { name: string; role?: Role; rooms?: string[] } }>('/v1/dev/token', { schema: { body: devTokenSchema } }, async (request) => {
    if (!isDevelopment(deps.config)) throw new ApiError(404, 'not_found', 'No route POST /v1/dev/token.');
    const { name, role = 'viewer', rooms } = request.body;
    const sub = `dev-${randomBytes(4).toString('hex')}`;
    const expiresInSeconds = 24 * 3600;
    const token = deps.auth.sign({ sub, name, role, ...(rooms ? { rooms } : {}) }, expiresInSeconds);
    return { token, sub, name, role, rooms: rooms ?? [], expiresInSeconds };
  });
}
