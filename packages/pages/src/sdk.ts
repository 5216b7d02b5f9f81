/**
 * The SDK for other sites' pages, served by the front under /sdk/: the client and
 * `<danmaku-layer>` (packages/client/src/browser.ts) as an ES module and as an IIFE that sets a
 * global `Danmaku`, bundled by `npm run build` (or on the first request: browser-code.ts).
 *
 * Each build is served under a name with its content hash (`danmaku.<hash>.js`), cached
 * immutably; the plain names redirect to the current one, so a site either follows updates
 * (plain name) or pins a build (hashed name plus its SRI hash from the index at /sdk/).
 * Readable from any origin: CORS `*`, and a cross-origin resource policy that lets any page load it.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sdkBundles } from './browser-code.js';
import type { SdkFormat } from './bundle-layout.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** One served build: its plain name, its hashed name and its SRI hash. */
export interface SdkFile {
  name: string;
  file: string;
  format: SdkFormat;
  integrity: string;
  bytes: number;
  text: string;
}

const FORMATS = [
  { name: 'danmaku.js', stem: 'danmaku', format: 'esm' },
  { name: 'danmaku.iife.js', stem: 'danmaku.iife', format: 'iife' },
] as const;

/** The served builds, named and hashed once per process. */
export function sdkFiles(): () => Promise<SdkFile[]> {
  const bundles = sdkBundles();
  let files: SdkFile[] | null = null;
  return async () => {
    const texts = await bundles();
    files ??= FORMATS.map(({ name, stem, format }) => {
      const text = texts[format];
      const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
      const integrity = `sha384-${createHash('sha384').update(text).digest('base64')}`;
      return { name, file: `${stem}.${hash}.js`, format, integrity, bytes: Buffer.byteLength(text), text };
    });
    return files;
  };
}

function open(reply: FastifyReply): FastifyReply {
  return reply.header('access-control-allow-origin', '*').header('cross-origin-resource-policy', 'cross-origin');
}

function indexHtml(files: SdkFile[], origin: string): string {
  const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = files
    .map((f) => `<tr><td><a href="${f.file}">${f.file}</a></td><td>${f.name}</td><td>${f.format}</td><td>${f.bytes}</td><td><code>${f.integrity}</code></td></tr>`)
    .join('\n');
  const iife = files.find((f) => f.format === 'iife');
  const snippet = iife ? escape(`<script src="${origin}/sdk/${iife.file}" integrity="${iife.integrity}" crossorigin="anonymous"></script>`) : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Danmaku SDK</title></head><body>
<h1>Danmaku SDK</h1>
<p>Pin a build by its hashed name and SRI hash; the plain names always redirect to the current build. JSON: <a href="index.json">index.json</a>.</p>
<table><thead><tr><th>file</th><th>plain name</th><th>format</th><th>bytes</th><th>integrity</th></tr></thead><tbody>
${rows}
</tbody></table>
<pre><code>${snippet}</code></pre>
</body></html>
`;
}

/** The /sdk/ routes, without the pages' security headers (other sites load these). */
export function registerSdk(app: FastifyInstance): void {
  const files = sdkFiles();
  const noHelmet = { helmet: false as const };
  const originOf = (host: string | undefined, protocol: string) => `${protocol}://${host ?? '127.0.0.1'}`;

  app.get('/sdk', noHelmet, async (_request, reply) => reply.redirect('/sdk/', 301));
  app.get('/sdk/', noHelmet, async (request, reply) => {
    const html = indexHtml(await files(), originOf(request.headers.host, request.protocol));
    return open(reply)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .send(html);
  });
  app.get('/sdk/index.json', noHelmet, async (_request, reply) => {
    const list = (await files()).map(({ name, file, format, integrity, bytes }) => ({ name, file, url: `/sdk/${file}`, format, integrity, bytes }));
    return open(reply).header('cache-control', 'no-cache').send({ files: list });
  });
  app.get<{ Params: { file: string } }>('/sdk/:file', noHelmet, async (request, reply) => {
    const wanted = request.params.file;
    const all = await files();
    const plain = all.find((f) => f.name === wanted);
    if (plain) return open(reply).header('cache-control', 'no-cache').redirect(`/sdk/${plain.file}`, 302);
    const built = all.find((f) => f.file === wanted);
    if (!built) return open(reply).code(404).send({ error: { code: 'not_found', message: `No SDK file ${wanted}; see /sdk/ for the current ones.` } });
    return open(reply).type('text/javascript; charset=utf-8').header('cache-control', IMMUTABLE).send(built.text);
  });
}
