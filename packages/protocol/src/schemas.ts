import { COLOR_PATTERN, COMMENT_MODES, SENDABLE_TYPES, type CommentMode } from './message.js';

/** Limits a person can read in an error message; kept here so every surface applies the same. */
export const LIMITS = {
  commentMaxChars: 100,
  giftIdPattern: '^[A-Za-z0-9_.-]{1,32}$',
  giftMaxCount: 9999,
  clientMsgIdMaxChars: 64,
  pollMaxLimit: 200,
  usersMaxLimit: 200,
  likesMaxCount: 1000,
  /** Bodies are tiny; anything larger is an error, not a message. */
  bodyMaxBytes: 4096,
} as const;

/**
 * Text a person typed may not carry control characters: C0 (NUL, newlines, escape sequences),
 * DEL, C1, the line/paragraph separators, and the bidirectional overrides that make text read
 * differently from what it is. They are refused (400 invalid_request), not stored and broadcast.
 * The ranges, for use inside a character class beside other rules (a URL pattern):
 */
export const CONTROL_CHAR_RANGES = '\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069';
/** A JSON Schema `pattern` for text fields: no control character anywhere. */
export const NO_CONTROL_CHARS = `^[^${CONTROL_CHAR_RANGES}]*$`;
const CONTROL_CHARS = new RegExp(`[${CONTROL_CHAR_RANGES}]`, 'gu');

/** For text that arrives outside a schema (a token's display name): the control characters removed. */
export function stripControlChars(text: string): string {
  return text.replace(CONTROL_CHARS, '');
}

/**
 * A send, as the HTTP body and (with `roomId`) the socket `send` payload: one schema, so the two
 * surfaces cannot drift apart. JSON Schema draft-07, as Ajv (Fastify's and the connector's) reads it.
 */
export const sendMessageBodySchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: SENDABLE_TYPES },
    content: { type: 'string', minLength: 1, maxLength: LIMITS.commentMaxChars, pattern: NO_CONTROL_CHARS },
    giftId: { type: 'string', pattern: LIMITS.giftIdPattern },
    count: { type: 'integer', minimum: 1, maximum: LIMITS.giftMaxCount },
    clientMsgId: { type: 'string', minLength: 1, maxLength: LIMITS.clientMsgIdMaxChars, pattern: NO_CONTROL_CHARS },
    color: { type: 'string', pattern: COLOR_PATTERN },
    mode: { type: 'string', enum: COMMENT_MODES },
  },
} as const;

export interface SendMessageBody {
  type: (typeof SENDABLE_TYPES)[number];
  content?: string;
  giftId?: string;
  count?: number;
  clientMsgId?: string;
  /** Comments only: `#RRGGBB`. */
  color?: string;
  /** Comments only. */
  mode?: CommentMode;
}
