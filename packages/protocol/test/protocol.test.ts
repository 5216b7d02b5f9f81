/** The wire contract: one cursor codec for servers and browsers, and the socket payload validators. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { browserBundle, importsNodeBuiltin } from '@danmaku/testkit';
import { DEFAULT_POLL_TYPES, MESSAGE_TYPES, decodeCursor, encodeCursor, isClientEvent, type Cursor } from '@danmaku/protocol';
import { describeErrors, validJoin, validLeave, validSend } from '@danmaku/protocol/validate';

/** The codec servers used before it moved here (Node's Buffer): cursors already given out must read the same. */
function bufferEncode(cursor: Cursor): string {
  return Buffer.from(
    Object.entries(cursor)
      .map(([type, seq]) => `${type}.${seq}`)
      .join(','),
    'utf8',
  ).toString('base64url');
}
function bufferDecode(text: string): Cursor | null {
  if (text.length === 0 || text.length > 512 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const cursor: Cursor = {};
  for (const part of Buffer.from(text, 'base64url').toString('utf8').split(',')) {
    const dot = part.indexOf('.');
    if (dot <= 0) return null;
    const type = part.slice(0, dot);
    const seq = part.slice(dot + 1);
    if (!(MESSAGE_TYPES as readonly string[]).includes(type) || !/^\d{1,15}$/.test(seq)) return null;
    cursor[type as keyof Cursor] = Number(seq);
  }
  return cursor;
}

/** A small deterministic generator, so a failure names an input that fails again. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('cursor codec', () => {
  it('round-trips, and encodes exactly as the Buffer codec did', () => {
    const random = lcg(7);
    for (let i = 0; i < 2000; i++) {
      const cursor: Cursor = {};
      for (const type of MESSAGE_TYPES) if (random() < 0.6) cursor[type] = Math.floor(random() * 10 ** Math.ceil(random() * 15));
      const text = encodeCursor(cursor);
      assert.equal(text, bufferEncode(cursor));
      if (Object.keys(cursor).length > 0) assert.deepEqual(decodeCursor(text), cursor);
    }
  });

  it('decodes whatever it is given as the Buffer codec did: valid, truncated, padded out or garbage', () => {
    const random = lcg(11);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.';
    const inputs: string[] = ['', 'A', 'AA', '====', 'x'.repeat(513), encodeCursor({ comment: 5 }) + 'A', encodeCursor({ gift: 12, comment: 3 }).slice(0, -1)];
    for (let i = 0; i < 3000; i++) {
      const valid = encodeCursor({ comment: Math.floor(random() * 1e6), enter: Math.floor(random() * 1e3) });
      // Mutate a valid cursor (so many decode to near-valid text), or make one up.
      if (random() < 0.5) {
        const at = Math.floor(random() * valid.length);
        inputs.push(valid.slice(0, at) + alphabet[Math.floor(random() * alphabet.length)] + valid.slice(at + (random() < 0.5 ? 1 : 0)));
      } else {
        inputs.push(Array.from({ length: 1 + Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
      }
    }
    for (const text of inputs) assert.deepEqual(decodeCursor(text), bufferDecode(text), `input ${JSON.stringify(text)}`);
  });

  it('rejects what no server made', () => {
    for (const text of ['', 'not a cursor!', btoa('comment.-1'), btoa('chat.1'), btoa('comment.1234567890123456'), btoa('comment.1,,gift.2')]) {
      assert.equal(decodeCursor(text.replace(/=+$/, '')), null, text);
    }
  });
});

describe('socket payloads', () => {
  it('accepts the documented payloads', () => {
    assert.ok(validJoin({ roomId: 'r1' }));
    assert.ok(validJoin({ roomId: 'r1', types: [...DEFAULT_POLL_TYPES], cursor: encodeCursor({ comment: 1 }) }));
    assert.ok(validLeave({ roomId: 'r1' }));
    assert.ok(validSend({ roomId: 'r1', type: 'comment', content: 'hi', clientMsgId: 'm1' }));
    assert.ok(validSend({ roomId: 'r1', type: 'gift', giftId: 'rose', count: 3 }));
  });

  it('refuses the rest with a sentence that names the field', () => {
    /** The refusal's sentence, read right after the call (a validator keeps its last errors only). */
    const refusal = (validator: typeof validJoin | typeof validLeave | typeof validSend, payload: unknown): string | null =>
      validator(payload) ? null : describeErrors(validator.errors);
    assert.equal(refusal(validJoin, 'not an object'), 'the payload must be object.');
    assert.equal(refusal(validJoin, { roomId: 'bad room id!' }), '"roomId" must match pattern "^[A-Za-z0-9_-]{1,64}$".');
    assert.equal(refusal(validJoin, { roomId: 'r', types: ['like', 'chat'] }), '"types/1" must be equal to one of the allowed values.');
    assert.equal(refusal(validJoin, { roomId: 'r', cursor: 5 }), '"cursor" must be string.');
    assert.equal(refusal(validLeave, {}), 'Missing field "roomId".');
    assert.equal(refusal(validSend, { roomId: 'r', type: 'comment', content: 'x', extra: true }), 'Unknown field "extra".');
    assert.equal(refusal(validSend, { type: 'comment', content: 'x' }), 'Missing field "roomId".');
    assert.equal(refusal(validSend, { roomId: 'r', type: 'enter' }), '"type" must be equal to one of the allowed values.');
    assert.equal(refusal(validSend, { roomId: 'r', type: 'gift', giftId: 'rose', count: '3' }), '"count" must be integer.');
    assert.equal(refusal(validSend, { roomId: 'r', type: 'comment', content: 'x'.repeat(101) }), '"content" must NOT have more than 100 characters.');
  });

  it('knows its events', () => {
    assert.ok(isClientEvent('join') && isClientEvent('leave') && isClientEvent('send'));
    assert.ok(!isClientEvent('explode') && !isClientEvent('messages'));
  });

  it('bundles for the browser without Node built-ins or the validators', async () => {
    const code = await browserBundle('packages/protocol/src/index.ts');
    assert.ok(code.includes('decodeCursor'));
    assert.ok(!importsNodeBuiltin(code), 'no node: imports');
    assert.ok(!code.includes('ajv'), 'no Ajv in the browser part');
  });
});
