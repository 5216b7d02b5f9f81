/**
 * Compiled validators for the socket payloads, for servers. A separate entry point
 * (`@danmaku/protocol/validate`) so the browser SDK, which only emits these payloads, does not
 * bundle Ajv.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { joinRequestSchema, leaveRequestSchema, sendRequestSchema, type JoinRequest, type LeaveRequest, type SendRequest } from './socket.js';

// Wrong types are errors, never coerced; nothing is filled in or stripped.
const ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false });

export const validJoin = ajv.compile<JoinRequest>(joinRequestSchema);
export const validLeave = ajv.compile<LeaveRequest>(leaveRequestSchema);
export const validSend = ajv.compile<SendRequest>(sendRequestSchema);

/** The first error, as a sentence that names the field. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return 'The payload is not valid.';
  const field = first.instancePath ? `"${first.instancePath.slice(1)}"` : 'the payload';
  if (first.keyword === 'additionalProperties') return `Unknown field "${String(first.params.additionalProperty)}".`;
  if (first.keyword === 'required') return `Missing field "${String(first.params.missingProperty)}".`;
  return `${field} ${first.message ?? 'is not valid'}.`;
}
