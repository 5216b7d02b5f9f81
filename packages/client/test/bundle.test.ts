/** The SDK must bundle for browsers: no Node-only import anywhere on its path. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { browserBundle, importsNodeBuiltin } from '@danmaku/testkit';

describe('client SDK bundle', () => {
  it('bundles for the browser without Node built-ins', async () => {
    const code = await browserBundle('packages/client/src/index.ts');
    assert.ok(code.includes('DanmakuClient'));
    assert.ok(!importsNodeBuiltin(code), 'no node: imports');
  });
});
