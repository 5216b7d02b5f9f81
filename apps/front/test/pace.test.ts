import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PollPace } from '../src/cache/pace.js';

test('a quiet room keeps the configured wait; a hot one is told to come back before a third of retention arrives', () => {
  const pace = new PollPace(1000);
  assert.equal(pace.retryAfter('quiet', 10, 2000, false, 0), 2000, 'first sight: no rate known yet');
  assert.equal(pace.retryAfter('quiet', 11, 2000, false, 2000), 2000, '0.5 messages/s is far from retention');
  assert.equal(pace.retryAfter('quiet', 11, 500, false, 4000), 500, 'a shorter configured wait stays');

  pace.retryAfter('hot', 0, 2000, false, 0);
  // 500 messages/s: a third of 1000 arrives in 667 ms.
  assert.equal(pace.retryAfter('hot', 1000, 2000, false, 2000), 666);
  // A burst within 200 ms keeps the estimate rather than reading 10 messages/ms off it.
  assert.equal(pace.retryAfter('hot', 1100, 2000, false, 2100), 666);
  // A full page: the poller is behind and comes back at once.
  assert.equal(pace.retryAfter('hot', 1100, 2000, true, 2150), 250);
  // It calms down gradually, not at the first quiet answer.
  const calmer = pace.retryAfter('hot', 1100, 2000, false, 3100);
  assert.ok(calmer > 666 && calmer <= 2000, `calmer ${calmer}`);
});

test('never below the floor however hot, and rooms beyond the memory bound are forgotten oldest first', () => {
  const pace = new PollPace(100);
  pace.retryAfter('raid', 0, 2000, false, 0);
  assert.equal(pace.retryAfter('raid', 100_000, 2000, false, 1000), 250);
  for (let i = 0; i < 20_000; i++) pace.retryAfter(`room-${i}`, 0, 2000, false, 1000);
  // 'raid' was the least recently polled: it starts over with no rate known.
  assert.equal(pace.retryAfter('raid', 200_000, 2000, false, 2000), 2000);
});
