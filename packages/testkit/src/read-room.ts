import { encodeCursor, type Message, type MessageType } from '@danmaku/protocol';
import { waitFor } from './harness.js';

export interface ReadRoomOptions {
  type?: MessageType;
  /** Read until this holds for everything read so far and a page comes back empty. */
  until: (read: Message[]) => boolean;
  timeoutMs: number;
  intervalMs?: number;
  /** Messages read so far are pushed here too, so a caller can report them when the wait fails. */
  into?: Message[];
  /** Sees every page (e.g. to assert it was not `skipped`). */
  onPage?: (page: { messages: Message[]; cursor: string; skipped?: boolean }) => void;
}

/**
 * Reads one type of a room from its first message on, page by page by cursor over the public poll
 * API, until `until` holds and the room has nothing more: how a test checks what a pipeline stored.
 */
export async function readRoom(frontUrl: string, room: string, options: ReadRoomOptions): Promise<Message[]> {
  const type = options.type ?? 'comment';
  const read = options.into ?? [];
  let cursor = encodeCursor({ [type]: 0 });
  await waitFor(
    `${room} to hold what was expected`,
    async () => {
      const res = await fetch(`${frontUrl}/v1/rooms/${room}/messages?types=${type}&limit=200&cursor=${cursor}`);
      const page = (await res.json()) as { messages: Message[]; cursor: string; skipped?: boolean };
      options.onPage?.(page);
      read.push(...page.messages);
      cursor = page.cursor;
      return page.messages.length === 0 && options.until(read);
    },
    options.timeoutMs,
    options.intervalMs ?? 100,
  );
  return read;
}
