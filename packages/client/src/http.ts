import type { ErrorBody } from '@danmaku/protocol';
import { ClientError } from './options.js';
import type { SendBody, SendResult } from './transport.js';

export interface HttpTarget {
  baseUrl: string;
  roomId: string;
  fetch: typeof fetch;
}

export function roomUrl(target: HttpTarget, rest: string): string {
  return `${target.baseUrl}/v1/rooms/${encodeURIComponent(target.roomId)}/${rest}`;
}

/** `POST /v1/rooms/:roomId/messages`: the send every mode can fall back to. */
export async function sendOverHttp(target: HttpTarget, token: string, body: SendBody): Promise<SendResult> {
  const response = await target.fetch(roomUrl(target, 'messages'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as SendResult & { error?: ErrorBody };
  if (!response.ok) throw new ClientError(answer.error?.code ?? 'http_error', answer.error?.message ?? `HTTP ${response.status}`, response.status);
  return { id: answer.id, ts: answer.ts };
}
