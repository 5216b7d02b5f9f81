import { randomBytes } from 'node:crypto';
import { ROLES, type Role } from '@danmaku/auth';
import { isDefaultSecret } from '@danmaku/config';
import { ApiError } from '@danmaku/model';
import type { FastifyInstance } from '@danmaku/http';
import type { FrontDeps } from '../context.js';

const devTokenSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 32 },
    role: { type: 'string', enum: ROLES },
    rooms: { type: 'array', maxItems: 20, items: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
  },
} as const;

/** The pages' "Get a dev token" button. */
export function devTokenRoutes(app: FastifyInstance, deps: FrontDeps): void {
  // Development only: with the default secret anyone can sign tokens anyway (it is in the
  // source); with a real secret this endpoint does not exist, so production never mints tokens.
  app.post<{ Body: { name: string; role?: Role; rooms?: string[] } }>('/v1/dev/token', { schema: { body: devTokenSchema } }, async (request) => {
    if (!isDefaultSecret(deps.config)) throw new ApiError(404, 'not_found', 'No route POST /v1/dev/token.');
    const { name, role = 'viewer', rooms } = request.body;
    const sub = `dev-${randomBytes(4).toString('hex')}`;
    const expiresInSeconds = 24 * 3600;
    const token = deps.auth.sign({ sub, name, role, ...(rooms ? { rooms } : {}) }, expiresInSeconds);
    return { token, sub, name, role, rooms: rooms ?? [], expiresInSeconds };
  });
}
