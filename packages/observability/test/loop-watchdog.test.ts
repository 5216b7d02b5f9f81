/**
 * A process whose event loop stops turning kills itself after DANMAKU_LOOP_STALL_MS, saying why,
 * so its supervisor starts it again; a busy loop that still turns is left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('./fixtures/loop.ts', import.meta.url));

function run(env: Record<string, string>, guardMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', fixture], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  // Bounded: a watchdog that does not fire must fail the test, not hang it.
  const guard = setTimeout(() => child.kill('SIGKILL'), guardMs);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, ms: Date.now() - started });
    });
  });
}

test('a process whose event loop is blocked is killed after the stall time, saying why', { timeout: 30_000 }, async () => {
  const { signal, stderr, ms } = await run({ LOOP: 'block', STALL_MS: '1500' });
  assert.equal(signal, 'SIGKILL');
  assert.match(stderr, /event loop blocked for \d+ ms \(DANMAKU_LOOP_STALL_MS=1500\)/);
  assert.ok(ms < 15_000, `killed within the stall time and a check or two (${ms} ms)`);
});

test('a busy event loop that still turns is left alone', { timeout: 30_000 }, async () => {
  const { code, signal, stderr } = await run({ LOOP: 'busy', BUSY_MS: '3000', STALL_MS: '1500' });
  assert.equal(signal, null, stderr);
  assert.equal(code, 0);
});

test('a stall time of 0 turns the watchdog off', { timeout: 30_000 }, async () => {
  // Blocked for good and never killed by itself: the test's own guard ends it after 5 s.
  const { signal, stderr, ms } = await run({ LOOP: 'block', STALL_MS: '0' }, 5000);
  assert.equal(signal, 'SIGKILL');
  assert.doesNotMatch(stderr, /event loop blocked/);
  assert.ok(ms >= 5000, `alive until the guard (${ms} ms)`);
});
