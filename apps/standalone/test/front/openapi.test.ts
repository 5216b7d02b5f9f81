import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { chromium } from 'playwright-core';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, testConfig, uniqueRoom } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';

type Operation = { responses: Record<string, { content?: Record<string, unknown>; description: string }>; parameters?: unknown[]; requestBody?: unknown };
type OpenApi = { openapi: string; paths: Record<string, Record<string, Operation>> };

/**
 * The HTTP routes API.md lists: the first cell of each table row, `METHOD /path`, then more paths
 * or a bare method (the same path). Each entry holds alternatives, one of which must exist: a
 * further path like `/leave` beside `/enter` is a sibling, `/readyz` beside `/healthz` a path of its own.
 */
export function apiMdRoutes(text: string): string[][] {
  const routes: string[][] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) continue;
    const cell = line.split('|')[1] ?? '';
    const tokens = [...cell.replace(/\([^)]*\)/g, '').matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    const first = /^(GET|POST|PUT|DELETE) (\/\S*)$/.exec(tokens[0] ?? '');
    if (!first) continue;
    const method = first[1] as string;
    const path = first[2] as string;
    routes.push([`${method} ${path}`]);
    for (const more of tokens.slice(1)) {
      if (/^(GET|POST|PUT|DELETE)$/.test(more)) routes.push([`${more} ${path}`]);
      else if (more.startsWith('/')) routes.push([`${method} ${more}`, `${method} ${path.replace(/\/[^/]+$/, more)}`]);
    }
  }
  return routes;
}

/** `/v1/rooms/:roomId` and `/v1/rooms/{roomId}` both become `/v1/rooms/:`; a trailing slash does not count. */
function normalise(path: string): string {
  return path.replace(/\{[^}]+\}/g, ':').replace(/:[A-Za-z0-9_.]+/g, ':').replace(/\/\*$/, '/:').replace(/\/$/, '');
}

const db = testDatabase('openapi');
let system: Standalone;

before(async () => {
  system = await startStandalone(testConfig({ cluster: uniqueRoom('docs'), mysqlUrl: db.url }), createLogger('test', 'silent'));
});
after(async () => {
  await system?.stop();
  await db.drop();
});

describe('API documents', () => {
  test('/docs/json is a valid OpenAPI 3 document listing every API.md route, with answers and error codes', async () => {
    const res = await fetch(`${system.url}/docs/json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as OpenApi;
    assert.match(doc.openapi, /^3\./);
    // Validates against the OpenAPI 3 schema and resolves every $ref (a copy: it is changed in place).
    await SwaggerParser.validate(structuredClone(doc) as never);

    const documented = new Map<string, Operation>();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) documented.set(`${method.toUpperCase()} ${normalise(path)}`, op);
    }
    const listed = apiMdRoutes(readFileSync(join(REPO_ROOT, 'API.md'), 'utf8'));
    assert.ok(listed.length >= 40, `API.md routes found: ${listed.length}`);
    const key = (route: string): string => {
      const [method, path] = route.split(' ') as [string, string];
      return `${method} ${normalise(path)}`;
    };
    const unresolved = listed.filter((alternatives) => !alternatives.some((route) => documented.has(key(route)))).map((a) => a.join(' | '));
    assert.deepEqual(unresolved, [], 'every API.md route is in the document');

    for (const [key, op] of documented) {
      const statuses = Object.keys(op.responses);
      assert.ok(statuses.some((s) => s.startsWith('2')), `${key}: a success answer`);
      assert.ok(statuses.includes('500'), `${key}: the error shape`);
      for (const s of statuses.filter((x) => /^[45]/.test(x))) assert.match(op.responses[s]!.description, /error\.code: [a-z_]+/, `${key} ${s}: codes named`);
    }
    const send = documented.get('POST /v1/rooms/:/messages')!;
    assert.ok(send.requestBody, 'request body schema');
    assert.match(send.responses['429']!.description, /rate_limited/);
    assert.match(send.responses['403']!.description, /muted/);
    const poll = documented.get('GET /v1/rooms/:/messages')!;
    assert.ok((poll.parameters ?? []).length >= 4, 'path and query parameters');
    const dplayer = documented.get('GET /v1/dplayer/v3')!;
    assert.ok(JSON.stringify(dplayer.responses['200']).includes('timeSeconds'));
  });

  test('/docs serves the explorer and its assets from this server (no CDN)', async () => {
    const res = await fetch(`${system.url}/docs/`, { redirect: 'follow' });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /swagger-ui/i);
    const external = [...html.matchAll(/(?:src|href)="(https?:[^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(external, [], 'no external assets');
    const scripts = [...html.matchAll(/src="([^"]+\.js)"/g)].map((m) => m[1] as string);
    assert.ok(scripts.length > 0);
    for (const src of scripts) {
      const asset = await fetch(new URL(src, `${system.url}/docs/`));
      assert.equal(asset.status, 200, src);
      await asset.arrayBuffer();
    }
  });

  test('the explorer renders every operation in Chromium, without errors', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(msg.text());
      });
      await page.goto(`${system.url}/docs`);
      await page.waitForFunction(() => document.querySelectorAll('.opblock').length >= 40, undefined, { timeout: 30_000 });
      assert.ok(await page.locator('.opblock-summary-path', { hasText: '/v1/dplayer/v3/' }).count() >= 2);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
