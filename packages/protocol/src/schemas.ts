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
 * A send, as the HTTP body and (with `roomId`) the socket `send` payload: one schema, so the two
 * surfaces cannot drift apart. JSON Schema draft-07, as Ajv (Fastify's and the connector's) reads it.
 */
export const sendMessageBodySchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: SENDABLE_TYPES },
    content: { type: 'string', minLength: 1, maxLength: LIMITS.commentMaxChars },
    giftId: { type: 'string', pattern: LIMITS.giftIdPattern },
    count: { type: 'integer', minimum: 1, maximum: LIMITS.giftMaxCount },
    clientMsgId: { type: 'string', minLength: 1, maxLength: LIMITS.clientMsgIdMaxChars },
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
