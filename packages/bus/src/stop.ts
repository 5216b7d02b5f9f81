import type { Bus, Consumer } from './bus.js';

/** How long a stopping consumer may take to finish what the in-memory bus still holds. */
const DRAIN_MS = 5000;

/**
 * Stops a consumer gracefully. Kafka keeps what was not committed for the next member, but the
 * in-memory bus dies with the process: there, first let the consumer catch up (for a bounded time).
 */
export async function stopConsumer(consumer: Consumer, bus: Pick<Bus, 'kind'>): Promise<void> {
  if (bus.kind === 'memory') {
    const deadline = Date.now() + DRAIN_MS;
    while ((await consumer.lag()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await consumer.stop();
}
