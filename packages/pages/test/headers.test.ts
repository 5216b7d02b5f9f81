/**
 * The pages' security headers, on the plugin mounted the way the front mounts it: a CSP with no
 * inline code, nosniff, framing per page, and nothing of it leaking onto the JSON API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger } from '@danmaku/observability';
import { pagesPlugin } from '@danmaku/pages';

const BODIES_DIR = fileURLToPath(new URL('../bodies/', import.meta.url));

/** The CSP header as directive -> sources. */
function csp(header: string | string[] | number | undefined): Map<string, string[]> {
  assert.equal(typeof header, 'string', 'a Content-Security-Policy header');
  const out = new Map<string, string[]>();
  for (const part of (header as string).split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out.set(name, sources);
  }
  return out;
}

describe('page security headers', () => {
  let app: FastifyInstance;

  before(async () => {
    app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'pages-test' });
    app.get('/v1/ping', async () => ({ ok: true }));
    await app.register(pagesPlugin, { frameAncestors: ["'self'", 'https://blog.example'] });
    await app.ready();
  });
  after(() => app?.close());

  it('every page: a CSP without inline script or style, nosniff', async () => {
    for (const url of ['/', '/rooms/r1', '/replay', '/replay/lv1', '/overlay/r1', '/studio/r1', '/studio', '/admin']) {
      const res = await app.inject(url);
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/, url);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      const policy = csp(res.headers['content-security-policy']);
      assert.deepEqual(policy.get('script-src'), ["'self'"], url);
      assert.deepEqual(policy.get('script-src-attr'), ["'none'"], url);
      assert.deepEqual(policy.get('style-src'), ["'self'"], url);
      assert.deepEqual(policy.get('object-src'), ["'none'"], url);
      assert.deepEqual(policy.get('default-src'), ["'self'"], url);
      for (const sources of policy.values()) {
        assert.ok(!sources.some((s) => /unsafe-(inline|eval)/.test(s)), `${url}: ${String(res.headers['content-security-policy'])}`);
      }
    }
  });

  it('studio and admin are never framed; viewer, replay and overlay by the configured origins', async () => {
    for (const url of ['/studio/r1', '/studio', '/admin']) {
      const res = await app.inject(url);
      assert.deepEqual(csp(res.headers['content-security-policy']).get('frame-ancestors'), ["'none'"], url);
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
    }
    for (const url of ['/', '/rooms/r1', '/replay/lv1', '/overlay/r1']) {
      const res = await app.inject(url);
      assert.deepEqual(csp(res.headers['content-security-policy']).get('frame-ancestors'), ["'self'", 'https://blog.example'], url);
      assert.equal(res.headers['x-frame-options'], undefined, `${url}: frame-ancestors, not X-Frame-Options, decides`);
    }
  });

  it('scripts and styles: right types and nosniff; unknown scripts 404 in the error shape', async () => {
    const js = await app.inject('/js/overlay.js');
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    const css = await app.inject('/assets/pages.css');
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assert.equal(css.headers['x-content-type-options'], 'nosniff');
    const missing = await app.inject('/js/nope.js');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'not_found');
  });

  it('the JSON API is not the pages plugin: no page headers there', async () => {
    const res = await app.inject('/v1/ping');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-security-policy'], undefined);
  });

  it('the HTML has no inline script, style or event handler (the CSP would block them)', async () => {
    const bodies = readdirSync(BODIES_DIR).filter((f) => f.endsWith('.html'));
    assert.ok(bodies.length >= 5, bodies.join());
    // The served documents: the shared head and every body file, as a browser gets them.
    for (const file of ['/', '/replay', '/studio', '/admin', '/overlay']) {
      const res = await app.inject(file);
      assert.equal(res.statusCode, 200, file);
      const html = res.body;
      assert.equal(html.match(/<script\b/g)?.length, 1, `${file}: one page script`);
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\bsrc="\/js\/[a-z]+\.js"/, `${file}: ${tag}`);
      assert.doesNotMatch(html, /<style\b/i, file);
      assert.doesNotMatch(html, /\sstyle=/i, file);
      assert.doesNotMatch(html, /\son[a-z]+=/i, file);
      assert.doesNotMatch(html, /javascript:/i, file);
    }
  });
});
