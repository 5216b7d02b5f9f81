/**
 * A client process of the reconnect-storm bench: COUNT socket.io viewers (bench/lib/storm.ts, the
 * SDK's routing and backoff), each on a source address 127.0.0.1..N of its own index. It tells
 * the parent (IPC) when each viewer is up, lost or failed; the parent does the counting.
 */
import { httpAgent, type AnyAgent } from './lib/load/clients.js';
import { StormViewer } from './lib/storm.js';

export type ToStormWorker = { t: 'start'; baseUrl: string; first: number; count: number; rooms: string[]; sources: number; concurrency: number } | { t: 'exit' };
export type FromStormWorker =
  | { t: 'up'; i: number; endpoint: string; at: number }
  | { t: 'lost'; i: number; endpoint: string; at: number }
  | { t: 'failed'; i: number; endpoint: string; reason: string }
  | { t: 'started'; failed: number }
  | { t: 'messages'; count: number };

const viewers: StormViewer[] = [];
let messages = 0;

function tell(msg: FromStormWorker): void {
  process.send?.(msg);
}

async function start(msg: Extract<ToStormWorker, { t: 'start' }>): Promise<void> {
  const agents = new Map<string, AnyAgent>();
  const agentFor = (address: string): AnyAgent => {
    let agent = agents.get(address);
    if (!agent) agents.set(address, (agent = httpAgent(msg.baseUrl, address)));
    return agent;
  };
  let next = 0;
  let failed = 0;
  // Route requests and connects a few at a time: the crowd arrives over seconds, not in one burst.
  const runner = async (): Promise<void> => {
    while (next < msg.count) {
      const i = msg.first + next++;
      const address = `127.0.0.${1 + (i % msg.sources)}`;
      // The next viewer starts once this one joined (or its first attempt failed).
      let settle = (): void => undefined;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      const viewer = new StormViewer(
        { baseUrl: msg.baseUrl, uid: `storm-${i}`, roomId: msg.rooms[i % msg.rooms.length] as string, agent: agentFor(address), localAddress: address },
        {
          up: (endpoint, at) => {
            settle();
            tell({ t: 'up', i, endpoint, at });
          },
          lost: (endpoint, at) => tell({ t: 'lost', i, endpoint, at }),
          failed: (endpoint, reason) => {
            settle();
            tell({ t: 'failed', i, endpoint, reason });
          },
          messages: (count) => (messages += count),
        },
      );
      viewers.push(viewer);
      try {
        await viewer.start();
        await settled;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: msg.concurrency }, runner));
  tell({ t: 'started', failed });
}

// What arrived, once a second: the parent shows it (deliveries continue across the storm).
setInterval(() => {
  if (messages === 0) return;
  tell({ t: 'messages', count: messages });
  messages = 0;
}, 1000).unref();

process.on('message', (msg: ToStormWorker) => {
  if (msg.t === 'start') void start(msg);
  else {
    for (const v of viewers) v.close();
    process.exit(0);
  }
});
// The parent gone: leave with it.
process.on('disconnect', () => process.exit(0));
