import { Worker } from 'node:worker_threads';

/**
 * Ends the process when its event loop has not turned for `stallMs`. A loop that never yields
 * (a library spinning on promises, as kafkajs 2.2.4's consumer did once stopped mid-rebalance)
 * leaves a process alive that answers nothing, logs nothing and is never restarted: its
 * supervisor only sees it exit. The main thread ticks a shared counter every second; a worker
 * thread, which keeps running while the main loop is stuck, checks that it moves and otherwise
 * writes why to stderr and kills the process (SIGKILL: a stuck loop would never run a handler).
 */
export function watchEventLoop(stallMs: number): () => void {
  if (!(stallMs > 0)) return () => undefined;
  const ticks = new Int32Array(new SharedArrayBuffer(4));
  const tick = setInterval(() => Atomics.add(ticks, 0, 1), 1000);
  tick.unref();
  const worker = new Worker(
    `
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const { ticks, stallMs, pid } = workerData;
    let last = Atomics.load(ticks, 0);
    let movedAt = Date.now();
    setInterval(() => {
      const now = Date.now();
      const seen = Atomics.load(ticks, 0);
      if (seen !== last) {
        last = seen;
        movedAt = now;
      } else if (now - movedAt >= stallMs) {
        writeSync(2, 'event loop blocked for ' + (now - movedAt) + ' ms (DANMAKU_LOOP_STALL_MS=' + stallMs + '): killing process ' + pid + ' so its supervisor starts it again\\n');
        process.kill(pid, 'SIGKILL');
      }
    }, Math.min(1000, Math.max(100, Math.floor(stallMs / 4))));
    `,
    { eval: true, workerData: { ticks, stallMs, pid: process.pid } },
  );
  worker.unref();
  return () => {
    clearInterval(tick);
    void worker.terminate();
  };
}
