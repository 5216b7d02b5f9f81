/** The SDK must bundle for browsers: no Node-only import anywhere on its path. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { REPO_ROOT } from '@danmaku/testkit';

describe('client SDK bundle', () => {
  it('bundles for the browser without Node built-ins', async () => {
    const result = await build({
      entryPoints: [`${REPO_ROOT}/packages/client/src/index.ts`],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    assert.equal(result.errors.length, 0);
    const code = result.outputFiles[0]?.text ?? '';
    assert.ok(code.includes('DanmakuClient'));
    assert.ok(!/from\s*["']node:|require\(["']node:/.test(code), 'no node: imports');
  });
});
