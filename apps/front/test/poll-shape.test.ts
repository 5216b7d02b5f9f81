/** Room-size-aware polls over a cached window: store semantics for small rooms, span/sample/count for big ones. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { StreamWindow } from '../src/cache/room-cache.js';
import { keptBySample } from '@danmaku/switches';
import { waitFor } from '@danmaku/testkit';
import { Pressure, readWindow } from '../src/cache/shape.js';

const NOW = 1_000_000;

function windowOf(seqs: number[], tsOf: (seq: number) => number = () => NOW, base = (seqs[0] ?? 1) - 1): StreamWindow {
  const w = new StreamWindow();
  w.entries = seqs.map((seq) => ({ seq, ts: tsOf(seq), id: `id${seq}`, json: `{"seq":${seq}}` }));
  w.base = base;
  w.newestSeq = seqs[seqs.length - 1] ?? base;
  return w;
}
const seqsOf = (messages: string[]) => messages.map((j) => (JSON.parse(j) as { seq: number }).seq);

describe('readWindow', () => {
  const w = windowOf(Array.from({ length: 100 }, (_, i) => i + 1));

  it('small rooms: everything since the cursor, paged by limit, cursor continues', () => {
    let r = readWindow(w, 'comment', 10, 30, null, NOW);
    assert.deepEqual(seqsOf(r.messages), Array.from({ length: 30 }, (_, i) => i + 11));
    assert.equal(r.cursorSeq, 40);
    assert.equal(r.skipped, false);
    r = readWindow(w, 'comment', 90, 30, null, NOW);
    assert.deepEqual(seqsOf(r.messages), Array.from({ length: 10 }, (_, i) => i + 91));
    assert.equal(r.cursorSeq, 100);
    r = readWindow(w, 'comment', null, 5, null, NOW);
    assert.deepEqual(seqsOf(r.messages), [96, 97, 98, 99, 100]);
  });

  it('a cursor older than the window skips to the newest; one ahead of the cache waits', () => {
    const trimmed = windowOf(Array.from({ length: 50 }, (_, i) => i + 51));
    let r = readWindow(trimmed, 'comment', 10, 5, null, NOW);
    assert.equal(r.skipped, true);
    assert.deepEqual(seqsOf(r.messages), [96, 97, 98, 99, 100]);
    r = readWindow(trimmed, 'comment', 120, 5, null, NOW);
    assert.deepEqual(r, { messages: [], cursorSeq: 120, skipped: false });
  });

  it('big rooms: comments thinned to the hard count (newest kept), gifts never dropped', () => {
    const rules = { limit: 10, spanMs: 60_000, ratio: 1 };
    let r = readWindow(w, 'comment', 0, 100, rules, NOW);
    assert.equal(r.messages.length, 10);
    assert.equal(seqsOf(r.messages).at(-1), 100);
    assert.equal(r.skipped, true);
    assert.equal(r.cursorSeq, 100);
    r = readWindow(w, 'gift', 0, 100, { ...rules, ratio: 0 }, NOW);
    assert.equal(r.messages.length, 100);
    assert.equal(r.skipped, false);
  });

  it('big rooms: comments older than the span are stale and left out', () => {
    const aged = windowOf(Array.from({ length: 20 }, (_, i) => i + 1), (seq) => NOW - (20 - seq) * 1000);
    const r = readWindow(aged, 'comment', 0, 100, { limit: 100, spanMs: 5000, ratio: 1 }, NOW);
    assert.deepEqual(seqsOf(r.messages), [15, 16, 17, 18, 19, 20]);
    assert.equal(r.skipped, true);
  });

  it('sampling is deterministic by seq and near the ratio', () => {
    let kept = 0;
    for (let seq = 1; seq <= 10_000; seq++) if (keptBySample(seq, 0.3)) kept++;
    assert.ok(kept > 2700 && kept < 3300, `kept ${kept} of 10000 at 0.3`);
    assert.equal(keptBySample(42, 0.3), keptBySample(42, 0.3));
    assert.equal(keptBySample(7, 1), true);
    assert.equal(keptBySample(7, 0), false);
  });
});

describe('Pressure', () => {
  it('reports pressure after the event loop was blocked, and clears when it runs freely again', async () => {
    const pressure = new Pressure(250);
    pressure.start();
    // A delay is measured between two samples, so the block must come after the first ones: a
    // probe at the same resolution, enabled after Pressure's, shows when they were taken.
    const probe = monitorEventLoopDelay({ resolution: 20 });
    probe.enable();
    try {
      await waitFor('the first event-loop delay samples', () => probe.count >= 2, 3000, 5);
      const until = Date.now() + 600;
      while (Date.now() < until) {
        // Blocking on purpose: this is what an overloaded front looks like.
      }
      // It samples once a second: the first sample after the block says so, a later free one clears it.
      await waitFor('pressure after the block', () => pressure.underPressure(), 3000, 20);
      await waitFor('no pressure once the loop runs freely', () => !pressure.underPressure(), 3000, 20);
    } finally {
      probe.disable();
      pressure.stop();
    }
  });
});
