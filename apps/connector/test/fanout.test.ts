/** The hand-built WebSocket text frame must be what any WebSocket parser reads back, at every length class. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ws from 'ws';
import { textFrame } from '../src/fanout.js';

// ws's own frame parser; @types/ws does not declare it, but the package exports it.
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(chunk: Buffer): void;
}
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

describe('textFrame', () => {
  for (const length of [0, 1, 125, 126, 65_535, 65_536, 200_000]) {
    it(`round-trips ${length} bytes (multi-byte text too)`, async () => {
      const text = length === 0 ? '' : 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
      // A server-side receiver expects masked frames; a client-side one (isServer false) reads ours.
      const receiver = new Receiver({ isServer: false });
      const got = new Promise<string>((resolve, reject) => {
        receiver.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? reject(new Error('binary')) : resolve(data.toString())));
        receiver.on('error', reject);
      });
      receiver.write(textFrame(text));
      assert.equal(await got, text);
    });
  }
});
