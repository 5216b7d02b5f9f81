import type { Message, RoomInfo, SendMessageBody } from '@danmaku/protocol';
import type { ClientError, Mode } from './options.js';

export type SendBody = SendMessageBody;
export interface SendResult {
  id: string;
  ts: number;
}

/**
 * A way to the room: a socket.io long connection or HTTP polling. The client drives both through
 * this one interface; which one runs, and when to switch, is routing's business, and what they
 * bring is merged by delivery.
 */
export interface Transport {
  readonly mode: Mode;
  /** Starts connecting (long) or polling (short); what happens is told through TransportEvents. */
  open(): void;
  /** Stops for good: no event after this. */
  close(): void;
  /**
   * Sends over this transport. Resolves null when it cannot carry the send right now (the caller
   * goes through HTTP; a clientMsgId makes that retry safe); rejects with a ClientError when the
   * server refused it.
   */
  send(body: SendBody): Promise<SendResult | null>;
}

/** What a transport reports to the client driving it. Polling has no link, so it never reports lost, refused, room or deleted. */
export interface TransportEvents {
  /** Where to resume: the newest seq per type delivered so far, as the server's cursor. */
  cursor(): string | undefined;
  /** Messages as they came: possibly repeated, possibly out of order. */
  messages(messages: Message[]): void;
  /** A cursor the server gave with them: the client is at least this far. */
  advance(cursor: string): void;
  /** A `skipped` answer's cursor, before its messages: where it is behind the client's, the stream restarted. */
  rewind(cursor: string): void;
  deleted(ids: string[]): void;
  room(info: RoomInfo): void;
  /** Connected and in the room (long: handshake and join done, in `ms`), or a poll answered. */
  up(ms: number): void;
  /** An attempt failed: a connect or join (then the transport is closed), or one poll (it goes on). */
  failed(reason: string): void;
  /** Was up, and the link went away; the transport is closed. */
  lost(): void;
  /** The server asked the client to reconnect elsewhere (it is draining); the transport is closed. */
  moved(): void;
  /** The server refused the room for a reason no transport would fix (banned, a bad request); closed. */
  refused(error: ClientError): void;
}
