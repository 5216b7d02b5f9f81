import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { broadcastPayload, notifyPayload, parseNodeEvent } from '../src/index.js';

describe('push payloads', () => {
  it('round-trips notify and broadcast, spliced from stored JSON', () => {
    assert.deepEqual(parseNodeEvent(notifyPayload(['a', 'b'])), { k: 'n', rooms: ['a', 'b'] });
    const stored = ['{"seq":1,"id":"x","type":"comment","ts":5}', '{"seq":2,"id":"y","type":"comment","ts":6}'];
    assert.deepEqual(parseNodeEvent(broadcastPayload('r"1', 'comment', stored)), {
      k: 'b',
      roomId: 'r"1',
      type: 'comment',
      messages: [
        { seq: 1, id: 'x', type: 'comment', ts: 5 },
        { seq: 2, id: 'y', type: 'comment', ts: 6 },
      ],
    });
    for (const bad of ['', 'null', '{"k":"z"}', '{"k":"b","roomId":1}', '[1]']) assert.equal(parseNodeEvent(bad), null, bad);
  });
});
