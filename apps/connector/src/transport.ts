import type { Principal } from '@danmaku/auth';
import type { KickedPacket, MessageType } from '@danmaku/protocol';
import type { StoredMessage } from '@danmaku/push';

/**
 * The seam between what every connection shares (rooms, merging, pulls, presence, room info,
 * slow-consumer drops: ConnectorCore and RoomHub) and how one wire protocol carries it. Modelled
 * on Centrifuge's Transport: the core hands a transport events for a group of sessions, already
 * merged; the transport encodes each once for the whole group and writes it to its sessions.
 */
export type RoomEvent =
  | { kind: 'messages'; roomId: string; messages: StoredMessage[]; cursor: string; skipped?: boolean }
  | { kind: 'deleted'; roomId: string; type: MessageType; ids: string[] }
  | { kind: 'room'; roomId: string; online: number; likes: number }
  | { kind: 'live'; roomId: string; live: { liveId: string; startedAt: number } | null };

export interface Transport {
  readonly name: string;
  /** Delivers one event to this transport's sessions in a group; returns how many it reached. */
  deliver(group: string, event: RoomEvent): number;
  /** Open sessions (the router's load figure). */
  readonly sessionCount: number;
  close(): Promise<void>;
}

/** One connection, whatever its protocol: what the core needs to manage it. */
export interface Session {
  readonly transport: string;
  readonly principal: Principal | null;
  /** roomId -> the group it sits in. Owned by the core. */
  readonly rooms: Map<string, string>;
  readonly ip: string | undefined;
  isOpen(): boolean;
  /** Bytes written but not yet taken by the peer. */
  bufferedBytes(): number;
  /** Closes at once, without flushing (a slow consumer never drains). */
  drop(): void;
  /** Group membership on the transport's side (where deliver() finds the session). */
  enterGroup(group: string): void;
  leaveGroup(group: string): void;
  /** What a joining session missed; a transport whose clients expect no history ignores it. */
  catchUp(roomId: string, messages: StoredMessage[], cursor: string, skipped: boolean): void;
  /** The session was taken out of a room (it has left it already): tell the client why, as its protocol can. */
  kicked(packet: KickedPacket): void;
  /** This node is draining: tell the client to reconnect elsewhere (as its protocol can), then close. */
  move(): void;
}
