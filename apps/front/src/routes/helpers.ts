import type { LiveRecord } from '@danmaku/archive';
import { ApiError } from '@danmaku/model';
import { DEFAULT_POLL_TYPES, isMessageType, type MessageType } from '@danmaku/protocol';

/** What several route plugins read and answer alike (ids, query fields, a live's view, colours), so no route imports another. */

export const LIVE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** The furthest offset into a live (ms since it started) a replay or an import reaches: a week. */
export const MAX_OFFSET = 7 * 24 * 3600 * 1000;

export const liveParams = {
  type: 'object',
  required: ['liveId'],
  properties: { liveId: { type: 'string', pattern: LIVE_ID_PATTERN } },
} as const;

/** A `types=comment,gift` query field (checked by parseTypes). */
export const typesField = { type: 'string', maxLength: 64 } as const;

/** The schema of a route on one live with these query fields, and no others. */
export function liveQuerySchema<P extends Record<string, unknown>>(properties: P) {
  return { params: liveParams, querystring: { type: 'object', additionalProperties: false, properties } } as const;
}

/** A live as the API shows it: links null when unset, and its length once it ended. */
export const liveView = (l: LiveRecord) => ({
  ...l,
  playbackUrl: l.playbackUrl ?? null,
  recordingUrl: l.recordingUrl ?? null,
  durationMs: l.endedAt === null ? null : l.endedAt - l.startedAt,
});

export function parseTypes(text: string | undefined): MessageType[] {
  if (text === undefined || text === '') return [...DEFAULT_POLL_TYPES];
  const types = [...new Set(text.split(',').map((t) => t.trim()))];
  for (const t of types) {
    if (!isMessageType(t)) {
      throw new ApiError(400, 'invalid_request', `Unknown message type "${t}"; use comment, gift, like, enter or system.`);
    }
  }
  return types as MessageType[];
}

/** White: the players' default colour. */
export const WHITE = 0xffffff;

/** `#RRGGBB` -> 0xRRGGBB; anything else is white, the players' default. */
export function colorToInt(color: unknown): number {
  return typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color) ? parseInt(color.slice(1), 16) : WHITE;
}

/** 0xRRGGBB (or `#RGB`/`#RRGGBB` text, which some players send) -> `#rrggbb`. */
export function intToColor(color: number | string | undefined): string | undefined {
  if (color === undefined) return undefined;
  if (typeof color === 'number') return '#' + (color & WHITE).toString(16).padStart(6, '0');
  const hex = color.replace(/^#/, '');
  const six = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex;
  return /^[0-9a-fA-F]{6}$/.test(six) ? '#' + six.toLowerCase() : undefined;
}
