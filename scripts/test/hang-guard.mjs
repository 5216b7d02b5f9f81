// Loaded into every test file's process (scripts/test.sh: --import): once the file's tests and
// hooks are done, the process must end by itself. A socket, timer or child left open would keep
// it, and with it the whole run, going until CI's limit; instead the file fails after
// TEST_HANG_GUARD_MS (120 s), naming what is still open. Nothing is forced while tests run.
import { after } from 'node:test';

const graceMs = Number(process.env.TEST_HANG_GUARD_MS ?? 120_000);

after(() => {
  if (!(graceMs > 0)) return;
  setTimeout(() => {
    process.stderr.write(`test file still running ${graceMs / 1000} s after its tests ended; open: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(1);
  }, graceMs).unref();
});
