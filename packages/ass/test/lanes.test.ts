import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { collide, layoutLanes, leftAt, textWidth, type LaneItem, type LaneScreen, type Placement } from '../src/index.js';

const screen: LaneScreen = { width: 1000, height: 400, laneHeight: 40, scrollMs: 5000, stillMs: 4000 };

/** Checks the promise itself by sampling: no two placed boxes in one lane share a pixel at any 10 ms step. */
function assertNoOverlap(placed: (Placement | null)[]): void {
  const boxes = placed.filter((p): p is Placement => p !== null);
  const end = Math.max(...boxes.map((b) => b.endMs));
  for (let t = 0; t <= end; t += 10) {
    const live = boxes.filter((b) => b.startMs <= t && t < b.endMs);
    for (const [i, a] of live.entries()) {
      for (const b of live.slice(i + 1)) {
        if (a.lane !== b.lane) continue;
        const la = leftAt(a, t);
        const lb = leftAt(b, t);
        assert.ok(la + a.width <= lb + 1e-6 || lb + b.width <= la + 1e-6, `lane ${a.lane} at ${t} ms: [${la}, ${la + a.width}] and [${lb}, ${lb + b.width}]`);
      }
    }
  }
}

describe('lane allocation', () => {
  test('top comments at the same moment stack downwards, bottom ones upwards, centred', () => {
    const items: LaneItem[] = [
      { atMs: 5000, mode: 'top', width: 200 },
      { atMs: 5000, mode: 'top', width: 300 },
      { atMs: 5000, mode: 'bottom', width: 100 },
      { atMs: 5000, mode: 'bottom', width: 100 },
    ];
    const [a, b, c, d] = layoutLanes(screen, items) as Placement[];
    assert.deepEqual([a!.lane, b!.lane, c!.lane, d!.lane], [0, 1, 9, 8]);
    assert.equal(a!.x, 400, 'centred: (1000 - 200) / 2');
    assert.equal(a!.speed, 0);
    assert.equal(a!.endMs, 9000);
    // Once the first top comment is gone, its lane is free again.
    const [, , later] = layoutLanes(screen, [...items.slice(0, 2), { atMs: 9000, mode: 'top', width: 200 }]) as Placement[];
    assert.equal(later!.lane, 0);
  });

  test('a scrolling comment follows another in its lane only when it can never catch it', () => {
    // Both cross the 1000 px screen in 5 s: the short one (100 px) at 0.22 px/ms, the long one at 0.3.
    const slowThenFast = layoutLanes(screen, [
      { atMs: 0, mode: 'scroll', width: 100 },
      { atMs: 600, mode: 'scroll', width: 500 },
    ]) as Placement[];
    // At 600 ms the short one's tail is in (left edge at 868), but the long one, faster, would
    // reach it before it leaves: another lane.
    assert.equal(slowThenFast[1]!.lane, 1);
    const fastThenSlow = layoutLanes(screen, [
      { atMs: 0, mode: 'scroll', width: 500 },
      { atMs: 1700, mode: 'scroll', width: 100 },
    ]) as Placement[];
    // The long one's tail entered at 1667 ms; the slower short one can never catch it: same lane.
    assert.equal(fastThenSlow[1]!.lane, 0);
    const tooSoon = layoutLanes(screen, [
      { atMs: 0, mode: 'scroll', width: 500 },
      { atMs: 1600, mode: 'scroll', width: 100 },
    ]) as Placement[];
    assert.equal(tooSoon[1]!.lane, 1, 'the long one\'s tail is still at the right edge');
  });

  test('a top comment and a scrolling one share a lane only while the scrolling one is clear of the centre', () => {
    // The scroller (100 px, 0.22 px/ms) passes the centred 200 px box (x 400..600) from 1818 ms to 3182 ms.
    const crossing = layoutLanes(screen, [
      { atMs: 0, mode: 'scroll', width: 100 },
      { atMs: 1000, mode: 'top', width: 200 },
    ]) as Placement[];
    assert.equal(crossing[1]!.lane, 1);
    const passed = layoutLanes(screen, [
      { atMs: 0, mode: 'scroll', width: 100 },
      { atMs: 3200, mode: 'top', width: 200 },
    ]) as Placement[];
    assert.equal(passed[1]!.lane, 0);
    assert.equal(collide(passed[0]!, passed[1]!), false);
  });

  test('a full screen: comments wait for a lane up to the limit, then are dropped; never drawn over each other', () => {
    const full: LaneItem[] = Array.from({ length: 12 }, () => ({ atMs: 0, mode: 'top' as const, width: 300 }));
    const noWait = layoutLanes(screen, full);
    assert.equal(noWait.filter((p) => p === null).length, 2, '10 lanes, 12 comments, no waiting');
    const waiting = layoutLanes({ ...screen, maxDelayMs: 4000, delayStepMs: 100 }, full);
    assert.equal(waiting.filter((p) => p === null).length, 0);
    assert.deepEqual(waiting.slice(10).map((p) => [p!.lane, p!.startMs]), [[0, 4000], [1, 4000]], 'the first lanes to free up, when they do');

    // A busy minute of everything at once.
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const modes = ['scroll', 'scroll', 'scroll', 'top', 'bottom'] as const;
    const items: LaneItem[] = Array.from({ length: 400 }, (_, i) => ({ atMs: i * 150 + Math.floor(random() * 100), mode: modes[Math.floor(random() * 5)]!, width: 40 + Math.floor(random() * 500) }));
    const placed = layoutLanes({ ...screen, maxDelayMs: 1000 }, items);
    assertNoOverlap(placed);
    const kept = placed.filter((p) => p !== null).length;
    assert.ok(kept > 240, `most are shown (${kept} of 400)`);
    for (const [i, p] of placed.entries()) {
      if (p) assert.ok(p.startMs >= items[i]!.atMs && p.startMs <= items[i]!.atMs + 1000, 'never early, at most the stated wait late');
    }
  });

  test('comments out of time order are refused', () => {
    assert.throws(() => layoutLanes(screen, [{ atMs: 10, mode: 'top', width: 1 }, { atMs: 5, mode: 'top', width: 1 }]), RangeError);
  });

  test('text width: CJK and emoji a full em, Latin less, joiners nothing', () => {
    assert.equal(textWidth('前方高能', 20), 80);
    assert.equal(textWidth('ab', 20), 24);
    assert.equal(textWidth('AB', 20), 32);
    assert.equal(textWidth('🔥', 20), 20);
    assert.equal(textWidth('👍🏽', 20), 20, 'a skin-tone modifier adds nothing');
    assert.equal(textWidth('👨\u200d👩\u200d👧', 20), 60);
  });
});
