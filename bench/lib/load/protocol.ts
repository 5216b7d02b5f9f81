/** Messages between the load tool and its client processes (node IPC, JSON). */
import type { Transport } from './clients.js';
import type { SenderSpec, ViewerSpec } from './plan.js';

export type Sparse = [number, number][];

export type ToWorker =
  | { t: 'start'; target: string; runId: string; protover: number; roomIds: string[]; viewers: ViewerSpec[]; senders: SenderSpec[]; sendSeconds: number }
  | { t: 'send' }
  /** Per room index: [message id, sender's clock at send (ms)] of every acknowledged message. */
  | { t: 'expect'; acked: Record<number, [string, number][]> }
  | { t: 'finish' };

export interface TransportTick {
  /** Open and ready now. */
  connected: number;
  /** Connections that ended (refused or dropped) since the last tick, and poll failures. */
  errors: number;
  /** First deliveries of this run's messages to ready viewers since the last tick. */
  deliveries: number;
  /** Their latency from the message's server ts, and from the sender's clock. */
  hist: Sparse;
  e2e: Sparse;
}

export interface SenderTick {
  sent: number;
  acked: number;
  errors: Record<string, number>;
  /** [room index, id, sent at] per acknowledgement since the last tick. */
  acks: [number, string, number][];
}

export interface ViewerTotals {
  viewers: number;
  connected: number;
  ready: number;
  expected: number;
  delivered: number;
  duplicated: number;
  /** Viewers that got less than they were owed. */
  missing: number;
}

export type FromWorker =
  | { t: 'tick'; at: number; transports: Partial<Record<Transport, TransportTick>>; senders: SenderTick; outstanding: number | null; sendDone: boolean }
  | {
      t: 'final';
      /** Keyed `transport/room index`. */
      totals: Record<string, ViewerTotals>;
      /** Why connections ended, counted. */
      reasons: Record<string, number>;
    };
