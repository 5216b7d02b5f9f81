/**
 * Sends `count` requests made by `send(i)`, `concurrency` at a time, and waits for every answer.
 * A freshly started server and Kafka broker spend their first thousands of requests compiling
 * their hot paths (V8's JIT, and the JVM's for over a minute at 200 messages/s): a bench warms
 * them this way before it measures, since a server in production has long been warm.
 */
export async function warmUp(count: number, send: (i: number) => Promise<unknown>, concurrency = 10): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/**
 * How long a bench sends at its measured pace to a broker before it measures (BENCH_BROKER_WARM_S,
 * 45 s). Burst warm-ups reach the broker as few, large requests; its per-request paths (one or two
 * records a produce, a fetch per batch) are what a paced run costs, and the JVM compiles them only
 * after tens of seconds of such requests: a broker given the burst alone measured 1,300-1,800 us of
 * JVM CPU per message at 200/s, one that had run for an hour 500-600 us.
 */
export const BROKER_WARM_S = Number(process.env.BENCH_BROKER_WARM_S ?? 45);

/** `send(i)` at `ratePerS` for `seconds`, each on its own schedule; resolves when all were answered. */
export async function sendPaced(seconds: number, ratePerS: number, send: (i: number) => Promise<unknown>): Promise<void> {
  const count = Math.round(seconds * ratePerS);
  const start = Date.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / ratePerS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(send(i));
  }
  await Promise.all(inFlight);
}
