/** Who connects where: viewers over rooms, transports, connectors, source addresses and workers. */
import type { Transport } from './clients.js';

export interface ViewerSpec {
  index: number;
  transport: Transport;
  room: number;
  roomId: string;
  /** The Bilibili `roomid` (Bilibili transports only). */
  roomid?: number;
  endpoint: string;
  token?: string;
  localAddress?: string;
  /** When to connect, from the start of the ramp. */
  delayMs: number;
}

export interface SenderSpec {
  index: number;
  token: string;
  ratePerS: number;
  /** Message n of this sender goes to room (offset + n * stride) mod rooms: all senders together go round robin. */
  offset: number;
  stride: number;
}

/**
 * Viewers per room: even, or room 0 holding `hugeShare` and the others a Zipf spread (room i's
 * weight 1/i). Whole numbers by largest remainder, so they add up to `viewers`.
 */
export function viewersPerRoom(viewers: number, rooms: number, hugeShare: number | null): number[] {
  let weights: number[];
  if (hugeShare === null) weights = Array.from({ length: rooms }, () => 1 / rooms);
  else {
    const harmonic = Array.from({ length: rooms - 1 }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
    weights = Array.from({ length: rooms }, (_, i) => (i === 0 ? hugeShare : harmonic > 0 ? ((1 - hugeShare) * (1 / i)) / harmonic : 0));
  }
  const exact = weights.map((w) => w * viewers);
  const counts = exact.map(Math.floor);
  let left = viewers - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    counts[i] = (counts[i] as number) + 1;
    left--;
  }
  return counts;
}

/** 127.0.0.1 .. 127.0.0.N for an endpoint on an IPv4 loopback address; nothing for any other host. */
export function sourceAddress(endpoint: string, i: number, count: number): string | undefined {
  const host = endpoint.includes('://') ? new URL(endpoint).hostname : endpoint.slice(0, endpoint.lastIndexOf(':'));
  if (count <= 1 || !/^127\.\d+\.\d+\.\d+$/.test(host)) return undefined;
  return `127.0.0.${1 + (i % count)}`;
}

export interface PlanInput {
  target: string;
  roomIds: string[];
  viewers: number;
  hugeRoomShare: number | null;
  transports: Transport[];
  endpoints: Record<Transport, string[]>;
  roomids: Map<string, number>;
  viewerToken: (i: number) => string | undefined;
  rampMs: number;
  sourceAddresses: number;
}

/**
 * Every viewer, in connection order: rooms fill together during the ramp (each room's k-th viewer
 * at k/count of it), transports take turns within a room, connectors take turns within a transport.
 */
export function planViewers(input: PlanInput): ViewerSpec[] {
  const counts = viewersPerRoom(input.viewers, input.roomIds.length, input.hugeRoomShare);
  const slots: { room: number; at: number }[] = [];
  counts.forEach((n, room) => {
    for (let k = 0; k < n; k++) slots.push({ room, at: k / n });
  });
  slots.sort((a, b) => a.at - b.at || a.room - b.room);
  const perTransport = new Map<Transport, number>();
  const perRoom = new Map<number, number>();
  return slots.map(({ room }, index) => {
    const k = perRoom.get(room) ?? 0;
    perRoom.set(room, k + 1);
    const transport = input.transports[(k + room) % input.transports.length] as Transport;
    const t = perTransport.get(transport) ?? 0;
    perTransport.set(transport, t + 1);
    const list = input.endpoints[transport];
    const endpoint = list[t % list.length] as string;
    const roomId = input.roomIds[room] as string;
    const bili = transport === 'bilibili-ws' || transport === 'bilibili-tcp';
    // Pollers read without a token, as the API allows; socket.io and Bilibili viewers are users when there are tokens.
    const token = transport === 'poll' ? undefined : input.viewerToken(index);
    // Counted per endpoint: ephemeral ports run out per (source, destination) pair.
    const localAddress = sourceAddress(endpoint, Math.floor(t / list.length), input.sourceAddresses);
    return {
      index,
      transport,
      room,
      roomId,
      ...(bili ? { roomid: input.roomids.get(roomId) } : {}),
      endpoint,
      ...(token ? { token } : {}),
      ...(localAddress ? { localAddress } : {}),
      delayMs: input.viewers > 1 ? Math.round((index / input.viewers) * input.rampMs) : 0,
    };
  });
}
