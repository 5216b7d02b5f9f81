/**
 * The web pages of DESIGN.md section 6: viewer (`/`, `/rooms/:roomId`), replay (`/replay/:liveId`),
 * the streamer studio (`/studio/:roomId`) and the operators' dashboard (`/admin`), plus the
 * development-only token endpoint.
 *
 * HTML and CSS are static files in apps/front/public. The page scripts (apps/front/src/pages/*.ts,
 * with the client SDK) are bundled by esbuild in memory on the first request and kept: nothing
 * built is committed or written to disk, so a fresh clone serves pages with no build step.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { build } from 'esbuild';
import { type Role } from '@danmaku/auth';

const DEV_ROLES: readonly Role[] = ['viewer', 'streamer'];
import { isDevelopment } from '@danmaku/config';
import { ApiError, NO_CONTROL_CHARS } from '@danmaku/model';
import type { FastifyInstance, FastifyReply } from '@danmaku/http';
import type { FrontDeps } from '../context.js';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));
const PAGES_DIR = fileURLToPath(new URL('../pages/', import.meta.url));
const SCRIPTS = ['viewer', 'replay', 'studio', 'admin'] as const;

const devTokenSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 32, pattern: NO_CONTROL_CHARS },
    // Never admin: a dev token is for trying the viewer and studio pages, not for operating.
    role: { type: 'string', enum: DEV_ROLES },
    rooms: { type: 'array', maxItems: 20, items: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
  },
} as const;

/** One esbuild run for every page script; a failed build is forgotten so the next request retries. */
function bundler(): () => Promise<Map<string, string>> {
  let pending: Promise<Map<string, string>> | null = null;
  return () => {
    pending ??= build({
      entryPoints: SCRIPTS.map((name) => `${PAGES_DIR}${name}.ts`),
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      outdir: '/pages',
      write: false,
      logLevel: 'silent',
    })
      .then((result) => new Map(result.outputFiles.map((file) => [file.path.slice('/pages/'.length), file.text])))
      .catch((err: unknown) => {
        pending = null;
        throw err;
      });
    return pending;
  };
}

export function pageRoutes(app: FastifyInstance, deps: FrontDeps): void {
  const scripts = bundler();
  void app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/assets/' });

  const page = (file: string) => async (_request: unknown, reply: FastifyReply) => reply.header('cache-control', 'no-cache').sendFile(file);
  app.get('/', page('viewer.html'));
  app.get('/rooms/:roomId', page('viewer.html'));
  app.get('/replay', page('replay.html'));
  app.get('/replay/:liveId', page('replay.html'));
  app.get('/studio', page('studio.html'));
  app.get('/studio/:roomId', page('studio.html'));
  app.get('/admin', page('admin.html'));

  app.get<{ Params: { file: string } }>('/js/:file', async (request, reply) => {
    const text = (await scripts()).get(request.params.file);
    if (text === undefined) throw new ApiError(404, 'not_found', `No script ${request.params.file}.`);
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(text);
  });

  // Development only: with the default secret anyone can sign tokens anyway (it is in the
  // source); with a real secret this endpoint does not exist, so production never mints tokens.
  app.post<{ Body: { name: string; role?: Role; rooms?: string[] } }>('/v1/dev/token', { schema: { body: devTokenSchema } }, async (request) => {
    if (!isDevelopment(deps.config)) throw new ApiError(404, 'not_found', 'No route POST /v1/dev/token.');
    const { name, role = 'viewer', rooms } = request.body;
    const sub = `dev-${randomBytes(4).toString('hex')}`;
    const expiresInSeconds = 24 * 3600;
    const token = deps.auth.sign({ sub, name, role, ...(rooms ? { rooms } : {}) }, expiresInSeconds);
    return { token, sub, name, role, rooms: rooms ?? [], expiresInSeconds };
  });
}
