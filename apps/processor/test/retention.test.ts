import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamRetention } from '../src/retention.js';

test('a quiet stream keeps the configured retention; a hot one its last 10 s, up to ten times it', () => {
  const retention = new StreamRetention(1000);
  assert.equal(retention.of('quiet'), 1000, 'a stream not seen yet');
  retention.after('quiet', 5, 0);
  assert.equal(retention.after('quiet', 10, 5000), 1000, '1 message/s');

  retention.after('hot', 0, 0);
  // 500 messages/s: the last 10 s are 5,000 messages.
  assert.equal(retention.after('hot', 500, 1000), 5000);
  assert.equal(retention.of('hot'), 5000);
  // Writes 100 ms apart keep the estimate (one batch says little about a rate).
  assert.equal(retention.after('hot', 600, 1100), 5000);
  // A raid beyond what ten times retention holds is capped.
  retention.after('raid', 0, 0);
  assert.equal(retention.after('raid', 50_000, 1000), 10_000);
  // Cooling down shrinks it gradually, back to the configured one.
  let last = 5000;
  for (let t = 2000; t < 20_000; t += 1000) last = retention.after('hot', 600, t);
  assert.equal(last, 1000);
});
