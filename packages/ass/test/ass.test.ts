import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ASS_DEFAULTS, AssWriter, assColor, assText, assTime } from '../src/index.js';

describe('ASS lines', () => {
  test('times in centiseconds, colours in BGR, text drawn literally', () => {
    assert.equal(assTime(0), '0:00:00.00');
    assert.equal(assTime(61_234), '0:01:01.23');
    assert.equal(assTime(3_723_456), '1:02:03.46');
    assert.equal(assColor(0xff8000), '&H0080FF&');
    assert.equal(assColor(0x0000ff), '&HFF0000&');
    assert.equal(assText('{\\b1}bold?'), '\\{\\\u200bb1\\}bold?', 'no override block, no escape');
    assert.equal(assText('前方高能 🔥'), '前方高能 🔥');
  });

  test('the writer: header with the resolution and opacity, one Dialogue per comment, left out when no lane frees up', () => {
    const ass = new AssWriter({ ...ASS_DEFAULTS, width: 640, height: 64, fontSize: 24, opacity: 0.5, maxDelaySeconds: 0 });
    const header = ass.header();
    assert.match(header, /\nPlayResX: 640\nPlayResY: 64\n/);
    assert.match(header, /\nStyle: Danmaku,Noto Sans CJK SC,24,&H80FFFFFF,/, 'alpha 0x80 for half opacity');
    // 64 px holds two 32 px lanes: a third top comment at the same moment has nowhere to go.
    const lines = ['a', 'b', 'c'].map((text) => ass.line({ offsetMs: 1000, text, color: 0xffffff, mode: 'top' }));
    assert.match(lines[0]!, /^Dialogue: 0,0:00:01\.00,0:00:05\.00,Danmaku,,0,0,0,,\{\\an8\\pos\(320,0\)\}a\n$/);
    assert.match(lines[1]!, /\{\\an8\\pos\(320,32\)\}b\n$/);
    assert.equal(lines[2], '');
    assert.equal(ass.dropped, 1);
    // Black text gets a white outline so it shows.
    assert.match(ass.line({ offsetMs: 5000, text: 'dark', color: 0x000000, mode: 'scroll' }), /\{\\move\(640,0,-\d+,0\)\\c&H000000&\\3c&HFFFFFF&\}dark\n$/);
  });
});
