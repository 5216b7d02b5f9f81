/**
 * Connections a connector worker's primary hands over before the worker serves. Preloaded in every
 * worker (`--require`, see workers.ts), so its listener is on the IPC channel before the first
 * message can arrive: a message nobody listens for is dropped, and the connection it carried with
 * it would hang. The worker takes them once its socket.io server serves (@socket.io/sticky's
 * listener takes the rest from then on).
 */
import type { SendHandle } from 'node:child_process';
import cluster from 'node:cluster';

const held: [unknown, SendHandle][] = [];

function hold(message: unknown, handle: SendHandle): void {
  const type = (message as { type?: unknown } | null)?.type;
  if (typeof type === 'string' && type.startsWith('sticky:')) held.push([message, handle]);
}

if (cluster.isWorker) process.on('message', hold);

/** Stops holding; returns what was held, in arrival order. */
export function releaseHeld(): [unknown, SendHandle][] {
  process.off('message', hold);
  return held.splice(0);
}
