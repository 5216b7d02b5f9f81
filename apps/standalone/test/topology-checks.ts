/**
 * What the topology suites hold every topology to, from a probe's result. The bounds are several
 * times the latency targets (those are the topologies bench's): they catch a pipeline that has
 * turned seconds-slow, as it was on the mock broker, without making a timed test of a shared machine.
 */
import assert from 'node:assert/strict';
import type { ProbeResult } from '@danmaku/testkit';

/** Comments spread over rooms: every wire got every acknowledged comment once, within 1.5 s. */
export function checkSpread(label: string, result: ProbeResult): void {
  process.stdout.write(`# ${label}: ${JSON.stringify(result)}\n`);
  assert.equal(result.acked, result.sent, 'every send accepted');
  for (const [wire, r] of Object.entries(result.wires)) {
    assert.equal(r.lost, 0, `${wire} lost`);
    assert.equal(r.duplicated, 0, `${wire} duplicated`);
  }
  assert.ok(result.wires.socketio.p99Ms < 1500, `socket.io p99 ${result.wires.socketio.p99Ms} ms`);
  assert.ok(result.wires.bilibili.p99Ms < 1500, `Bilibili p99 ${result.wires.bilibili.p99Ms} ms`);
  assert.ok(result.breakdown && result.breakdown.produce > 0, 'the produce stage was measured');
}

/** One hot room: socket.io viewers and a poller lose nothing; socket.io within 3 s. */
export function checkHotRoom(label: string, result: ProbeResult): void {
  process.stdout.write(`# ${label}: ${JSON.stringify(result)}\n`);
  assert.equal(result.acked, result.sent, 'every send accepted');
  assert.equal(result.wires.socketio.lost, 0, 'socket.io lost');
  assert.equal(result.wires.poll.lost, 0, 'poller lost');
  assert.ok(result.wires.socketio.p99Ms < 3000, `socket.io p99 ${result.wires.socketio.p99Ms} ms`);
}
