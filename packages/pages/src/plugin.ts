/**
 * The web pages of DESIGN.md section 6 as one Fastify plugin: viewer (`/`, `/rooms/:roomId`),
 * replay (`/replay/:liveId`), the OBS overlay (`/overlay/:roomId`), the streamer studio
 * (`/studio/:roomId`) and the operators' dashboard (`/admin`). The front mounts it with
 * `app.register(pagesPlugin, options)`; the pages talk to the API only over HTTP and socket.io.
 *
 * Each page is one head template (below) around the page's body file in packages/pages/bodies,
 * put together once at startup; CSS is static in packages/pages/public. The page scripts (src/browser/*.ts,
 * with the client SDK and hls.js) are bundled by `npm run build`, or on the first request when
 * run from the sources (browser-code.ts); nothing built is committed.
 *
 * Security headers (helmet) apply to this plugin's routes only, not to the JSON API: a
 * Content-Security-Policy with no inline script or style, nosniff, and a framing policy per page.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import { STAGE_CSS } from '@danmaku/client/stage';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { pageScripts } from './browser-code.js';
import type { PageName } from './bundle-layout.js';
import { registerSdk } from './sdk.js';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
const BODIES_DIR = fileURLToPath(new URL('../bodies/', import.meta.url));

/** What differs between the pages' heads; each page's script is /js/<name>.js and its body bodies/<name>.html. */
const PAGES: Record<PageName, { title: string; stylesheet: string; viewport: string }> = {
  viewer: { title: 'live room', stylesheet: 'pages.css', viewport: 'width=device-width, initial-scale=1' },
  replay: { title: 'replay', stylesheet: 'pages.css', viewport: 'width=device-width, initial-scale=1' },
  studio: { title: 'studio', stylesheet: 'pages.css', viewport: 'width=device-width, initial-scale=1' },
  admin: { title: 'operators', stylesheet: 'pages.css', viewport: 'width=device-width, initial-scale=1' },
  // OBS renders the overlay as a fixed 1080p browser source.
  overlay: { title: 'overlay', stylesheet: 'overlay.css', viewport: 'width=1920, height=1080' },
};

/** The whole document of one page: the shared head, then its body file as written. */
function renderPage(name: PageName): string {
  const { title, stylesheet, viewport } = PAGES[name];
  const body = readFileSync(`${BODIES_DIR}${name}.html`, 'utf8');
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="${viewport}" />
  <title>Danmaku · ${title}</title>
  <link rel="icon" href="data:," />
  <link rel="stylesheet" href="/assets/${stylesheet}" />
  <script type="module" src="/js/${name}.js"></script>
</head>
${body}</html>
`;
}

export interface PagesOptions {
  /**
   * Who may put the viewer, replay and overlay pages in a frame (CSP `frame-ancestors` sources,
   * e.g. `'self'` or `https://blog.example`). Studio and admin are never framed.
   */
  frameAncestors?: string[];
}

/**
 * The policy of every page. Scripts and styles come only from this origin (no inline code, no
 * eval), so a comment that slipped into the DOM as markup could not run. Media and connections
 * may go elsewhere: a streamer's video sits on any CDN (hls.js fetches its segments), and the
 * router hands out socket.io endpoints on other ports and hosts.
 */
export function pageDirectives(frameAncestors: string[]): Record<string, string[]> {
  return {
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'"],
    'media-src': ["'self'", 'blob:', 'http:', 'https:'],
    'connect-src': ["'self'", 'http:', 'https:', 'ws:', 'wss:'],
    'worker-src': ["'self'", 'blob:'],
    'object-src': ["'none'"],
    'base-uri': ["'self'"],
    'form-action': ["'self'"],
    'frame-ancestors': frameAncestors,
  };
}

export async function pagesPlugin(app: FastifyInstance, options: PagesOptions): Promise<void> {
  const frameAncestors = options.frameAncestors?.length ? options.frameAncestors : ["'self'"];
  const scripts = pageScripts();

  // Scoped by encapsulation: @fastify/helmet hooks this plugin's context, never the JSON API's.
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: { useDefaults: false, directives: pageDirectives(frameAncestors) },
    // X-Frame-Options cannot name several origins; frame-ancestors above is the framing policy.
    frameguard: false,
    // TLS is the terminating proxy's business; a plain-HTTP development host must not be pinned.
    strictTransportSecurity: false,
    // The overlay is loaded by OBS and the viewer may be framed: no cross-origin isolation.
    crossOriginEmbedderPolicy: false,
  });
  const unframed = {
    contentSecurityPolicy: { useDefaults: false, directives: pageDirectives(["'none'"]) },
    frameguard: { action: 'deny' as const },
  };

  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/assets/', index: false });
  // The renderer's own stylesheet, so the pages and the drop-in layer draw from one definition.
  app.get('/assets/danmaku.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(STAGE_CSS));

  // Built once here, at registration; a missing body file fails startup, not a viewer's request.
  const page = (name: PageName) => {
    const html = renderPage(name);
    return async (_request: unknown, reply: FastifyReply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html);
  };
  app.get('/', page('viewer'));
  app.get('/rooms/:roomId', page('viewer'));
  app.get('/replay', page('replay'));
  app.get('/replay/:liveId', page('replay'));
  app.get('/overlay', page('overlay'));
  app.get('/overlay/:roomId', page('overlay'));
  app.get('/studio', { helmet: unframed }, page('studio'));
  app.get('/studio/:roomId', { helmet: unframed }, page('studio'));
  app.get('/admin', { helmet: unframed }, page('admin'));
  registerSdk(app);

  app.get<{ Params: { file: string } }>('/js/:file', async (request, reply) => {
    const text = (await scripts()).get(request.params.file);
    if (text === undefined) {
      return reply.code(404).send({ error: { code: 'not_found', message: `No script ${request.params.file}.` } });
    }
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(text);
  });
}
