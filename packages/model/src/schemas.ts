import { LIMITS, ROOM_ID_PATTERN } from '@danmaku/protocol';

/** JSON Schemas (draft-07, as Fastify's Ajv reads them) for the public HTTP API. */
export const roomParamsSchema = {
  type: 'object',
  required: ['roomId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } },
} as const;

export const pollQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    types: { type: 'string', maxLength: 64 },
    cursor: { type: 'string', maxLength: 512 },
    limit: { type: 'integer', minimum: 1, maximum: LIMITS.pollMaxLimit },
  },
} as const;

export interface PollQuery {
  types?: string;
  cursor?: string;
  limit?: number;
}

export const usersQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: LIMITS.usersMaxLimit } },
} as const;
