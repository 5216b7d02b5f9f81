/**
 * The socket.io protocol between the SDK and a connector: every event each side may emit, its
 * payload, and its acknowledgement. The server types its `Server` with these and the SDK its
 * `io()` socket, so a renamed field or a new ack shape fails to compile on both sides at once.
 */
import { MESSAGE_TYPES, ROOM_ID_PATTERN, type Message, type MessageType } from './message.js';
import { sendMessageBodySchema, type SendMessageBody } from './schemas.js';

/** The error shape of every surface: `{ code, message }`, as in an HTTP error body. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** A refused request's acknowledgement. */
export interface Refusal {
  ok: false;
  error: ErrorBody;
}

export interface JoinRequest {
  roomId: string;
  /** Default: DEFAULT_POLL_TYPES. */
  types?: MessageType[];
  /** Where the client left off: it first receives what it missed, within retention. */
  cursor?: string;
}
/** `skipped`: the catch-up left messages out (older than retention, or than the catch-up age). */
export type JoinAck = { ok: true; cursor: string; skipped?: true } | Refusal;

export interface LeaveRequest {
  roomId: string;
}
export type LeaveAck = { ok: true } | Refusal;

export type SendRequest = SendMessageBody & { roomId: string };
export type SendAck = { ok: true; id: string; ts: number } | Refusal;

/** Many messages per packet, merged over a short window; the cursor is where they leave the client. */
export interface MessagesPacket {
  roomId: string;
  messages: Message[];
  cursor: string;
  /** Messages were left out: a catch-up that could not or would not reach back as far as the join's cursor (retention, catch-up age), or a sampled big room. */
  skipped?: boolean;
}

export interface RoomInfo {
  roomId: string;
  online: number;
  likes: number;
}

export interface DeletedPacket {
  roomId: string;
  ids: string[];
}

/**
 * The user was taken out of the room by a moderator: `banned` (a ban, the room refuses a join
 * until it ends) or `kicked` (this time only). No more packets of the room follow; the SDK does
 * not rejoin by itself.
 */
export interface KickedPacket {
  roomId: string;
  code: 'banned' | 'kicked';
  message: string;
}

export interface MovePacket {
  reason: 'draining';
}

export type Ack<A> = (answer: A) => void;

/** Client -> server, as the client emits them. */
export interface ClientToServerEvents {
  join: (request: JoinRequest, ack: Ack<JoinAck>) => void;
  leave: (request: LeaveRequest, ack?: Ack<LeaveAck>) => void;
  send: (request: SendRequest, ack: Ack<SendAck>) => void;
}

/** Server -> client. */
export interface ServerToClientEvents {
  messages: (packet: MessagesPacket) => void;
  room: (info: RoomInfo) => void;
  deleted: (packet: DeletedPacket) => void;
  kicked: (packet: KickedPacket) => void;
  /** This connector is going away (a deploy): reconnect to another one, with the cursor. The server closes the socket right after. */
  move: (packet: MovePacket) => void;
}

export const CLIENT_EVENTS = ['join', 'leave', 'send'] as const satisfies readonly (keyof ClientToServerEvents)[];
export type ClientEvent = (typeof CLIENT_EVENTS)[number];

export function isClientEvent(name: string): name is ClientEvent {
  return (CLIENT_EVENTS as readonly string[]).includes(name);
}

/**
 * The same events as the server receives them: from an untrusted peer, so the payload is unknown
 * until a validator (`@danmaku/protocol/validate`) says otherwise, and the ack may be missing or
 * not a function. Type the server's handlers with this, and narrow with the validators and `isAck`.
 */
export type ClientToServerWire = { [E in keyof ClientToServerEvents]: (payload: unknown, ack?: unknown) => void };

/** Narrows an ack received from the wire to the answer type of its event. */
export function isAck<E extends keyof ClientToServerEvents>(_event: E, ack: unknown): ack is NonNullable<Parameters<ClientToServerEvents[E]>[1]> {
  return typeof ack === 'function';
}

/** Rooms one socket may sit in at once (a viewer watches one; a few covers tabs and previews). */
export const MAX_ROOMS_PER_SOCKET = 8;

// Payload schemas (JSON Schema draft-07). Socket payloads get the same strictness as HTTP bodies.

export const joinRequestSchema = {
  type: 'object',
  required: ['roomId'],
  additionalProperties: false,
  properties: {
    roomId: { type: 'string', pattern: ROOM_ID_PATTERN },
    types: { type: 'array', minItems: 1, maxItems: MESSAGE_TYPES.length, uniqueItems: true, items: { type: 'string', enum: MESSAGE_TYPES } },
    cursor: { type: 'string', maxLength: 512 },
  },
} as const;

export const leaveRequestSchema = {
  type: 'object',
  required: ['roomId'],
  additionalProperties: false,
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } },
} as const;

/** The HTTP send body plus the room it goes to. */
export const sendRequestSchema = {
  ...sendMessageBodySchema,
  required: ['roomId', ...sendMessageBodySchema.required],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, ...sendMessageBodySchema.properties },
} as const;
