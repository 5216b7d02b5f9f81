/** The hand-built WebSocket frames must be what any WebSocket parser reads back, at every length class. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ws from 'ws';
import { eventFrame } from '../src/internals/engine-io.js';
import { wsFrame } from '../src/internals/ws.js';

// ws's own frame parser; @types/ws does not declare it, but the package exports it.
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(chunk: Buffer): void;
}
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

describe('text frames', () => {
  for (const length of [0, 1, 125, 126, 65_535, 65_536, 200_000]) {
    it(`round-trips ${length} bytes (multi-byte text too)`, async () => {
      const text = length === 0 ? '' : 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
      // A server-side receiver expects masked frames; a client-side one (isServer false) reads ours.
      const receiver = new Receiver({ isServer: false });
      const got = new Promise<string>((resolve, reject) => {
        receiver.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? reject(new Error('binary')) : resolve(data.toString())));
        receiver.on('error', reject);
      });
      receiver.write(wsFrame(0x1, Buffer.from(text)));
      assert.equal(await got, text);
    });
  }
});

describe('wsFrame', () => {
  for (const length of [0, 125, 126, 65_536]) {
    it(`round-trips a ${length}-byte binary frame (the Bilibili packets) byte for byte`, async () => {
      const payload = Buffer.alloc(length);
      for (let i = 0; i < length; i++) payload[i] = (i * 31) & 0xff;
      const receiver = new Receiver({ isServer: false });
      const got = new Promise<Buffer>((resolve, reject) => {
        receiver.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? resolve(data) : reject(new Error('text'))));
        receiver.on('error', reject);
      });
      receiver.write(wsFrame(0x2, payload));
      assert.deepEqual(await got, payload);
    });
  }

  it('frames a socket.io event as engine.io MESSAGE + socket.io EVENT', async () => {
    const receiver = new Receiver({ isServer: false });
    const got = new Promise<string>((resolve) => receiver.on('message', (data: Buffer) => resolve(data.toString())));
    receiver.write(eventFrame('messages', { roomId: 'r', messages: [{ content: 'é' }] }));
    assert.equal(await got, '42["messages",{"roomId":"r","messages":[{"content":"é"}]}]');
  });
});
