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
