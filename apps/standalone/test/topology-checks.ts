/**
 * What the topology suites hold every topology to, from a run of the load tool against it. The
 * bounds are several times the latency targets (those are the topologies bench's): they catch a
 * pipeline that has turned seconds-slow, as it was on the mock broker, without making a timed test
 * of a shared machine.
 */
import assert from 'node:assert/strict';
import type { DriveResult } from '../../../bench/lib/deployment.js';

function wire(result: DriveResult, name: 'poll' | 'socketio' | 'bilibili-tcp') {
  const r = result.report.transports[name];
  assert.ok(r, `the load tool measured ${name}`);
  assert.equal(r.connected, r.viewers, `every ${name} viewer connected`);
  return r;
}

/** Comments spread over rooms: every wire got every acknowledged comment once, within 1.5 s. */
export function checkSpread(label: string, result: DriveResult): void {
  process.stdout.write(`# ${label}: ${JSON.stringify({ sent: result.report.sent, acked: result.report.acked, transports: result.report.transports, breakdown: result.breakdown })}\n`);
  assert.equal(result.report.acked, result.report.sent, 'every send accepted');
  for (const name of ['poll', 'socketio', 'bilibili-tcp'] as const) {
    const r = wire(result, name);
    assert.ok(r.expected > 0, `${name} was owed messages`);
    assert.equal(r.lost, 0, `${name} lost`);
    assert.equal(r.duplicated, 0, `${name} duplicated`);
  }
  for (const name of ['socketio', 'bilibili-tcp'] as const) assert.ok((wire(result, name).p99Ms ?? Infinity) < 1500, `${name} p99 ${wire(result, name).p99Ms} ms`);
  assert.ok(result.breakdown.produce > 0, 'the produce stage was measured');
}

/** One hot room: socket.io viewers and a poller lose nothing; socket.io within 3 s. */
export function checkHotRoom(label: string, result: DriveResult): void {
  process.stdout.write(`# ${label}: ${JSON.stringify({ sent: result.report.sent, acked: result.report.acked, transports: result.report.transports, breakdown: result.breakdown })}\n`);
  assert.equal(result.report.acked, result.report.sent, 'every send accepted');
  for (const name of ['poll', 'socketio'] as const) {
    assert.ok(wire(result, name).expected > 0, `${name} was owed messages`);
    assert.equal(wire(result, name).lost, 0, `${name} lost`);
  }
  assert.ok((wire(result, 'socketio').p99Ms ?? Infinity) < 3000, `socket.io p99 ${wire(result, 'socketio').p99Ms} ms`);
}
