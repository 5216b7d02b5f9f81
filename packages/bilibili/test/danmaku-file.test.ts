import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DanmakuFileError, readDanmakuFile } from '../src/index.js';

const options = { maxRows: 100, maxOffsetMs: 3_600_000 };
const file = (rows: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n<i>\n  <chatserver>chat.bilibili.com</chatserver>\n  <chatid>1</chatid>\n${rows}</i>\n`;

describe('Bilibili danmaku file', () => {
  test('rows become comments: time, mode, colour, text with entities, CJK and emoji as they are', () => {
    const { danmaku, invalid } = readDanmakuFile(
      file(
        [
          '<d p="1.5,1,25,16777215,1600000000,0,abcd1234,101">hello &amp; &lt;welcome&gt;</d>',
          '<d p="2.25,5,25,16711680,1600000000,0,abcd1234,102">前方高能 🔥</d>',
          '<d p="3,4,25,65280,1600000000,0,ff00ff00,103"> spaced </d>',
          '<d p="4,2,25,255">no row id</d>',
        ].join('\n'),
      ),
      options,
    );
    assert.equal(invalid, 0);
    assert.deepEqual(
      danmaku.map((d) => [d.offsetMs, d.mode, d.color, d.text, d.userHash, d.key, d.rowId]),
      [
        [1500, 'scroll', 0xffffff, 'hello & <welcome>', 'abcd1234', 'r|101', '101'],
        [2250, 'top', 0xff0000, '前方高能 🔥', 'abcd1234', 'r|102', '102'],
        [3000, 'bottom', 0x00ff00, 'spaced', 'ff00ff00', 'r|103', '103'],
        [4000, 'scroll', 0x0000ff, 'no row id', null, 'c|4000|scroll|255|no row id|1', null],
      ],
    );
  });

  test('rows that cannot be comments are counted, not fatal; identical rows without ids stay apart', () => {
    const { danmaku, invalid } = readDanmakuFile(
      file(
        [
          '<d p="1,7,25,0">[0,0,"1-1",4,"positioned"]</d>', // mode 7 (positioned)
          '<d p="1,1,25,0"></d>', // no text
          '<d p="1,1,25,0"/>',
          `<d p="1,1,25,0">${'x'.repeat(101)}</d>`,
          '<d p="abc,1,25,0">bad time</d>',
          '<d p="-1,1,25,0">negative time</d>',
          '<d p="99999,1,25,0">after the limit</d>',
          '<d>no p</d>',
          '<d p="1,1,25,0">line&#10;break</d>',
          '<d p="5,1,25,notacolour">twice</d>',
          '<d p="5,1,25,notacolour">twice</d>',
        ].join('\n'),
      ),
      options,
    );
    assert.equal(invalid, 9);
    assert.deepEqual(danmaku.map((d) => [d.text, d.color, d.key]), [
      ['twice', 0xffffff, 'c|5000|scroll|16777215|twice|1'],
      ['twice', 0xffffff, 'c|5000|scroll|16777215|twice|2'],
    ]);
  });

  test('an empty file is no comments; broken XML, another root, a DTD and too many rows are errors', () => {
    assert.deepEqual(readDanmakuFile('<i></i>', options), { danmaku: [], invalid: 0 });
    assert.deepEqual(readDanmakuFile('<i>\n</i>', options), { danmaku: [], invalid: 0 });
    const broken = ['<i><d p="1,1,25,0">open', '<i><d p="1,1,25,0">a</i></d>', 'not xml at all', '<html><d p="1">x</d></html>', '<!DOCTYPE i [<!ENTITY a "aaaa">]><i><d p="1,1,25,0">&a;</d></i>'];
    for (const xml of broken) {
      assert.throws(() => readDanmakuFile(xml, options), (err: unknown) => err instanceof DanmakuFileError && err.reason === 'malformed', xml);
    }
    const many = file(Array.from({ length: 101 }, (_, i) => `<d p="${i},1,25,0">n${i}</d>`).join('\n'));
    assert.throws(() => readDanmakuFile(many, options), (err: unknown) => err instanceof DanmakuFileError && err.reason === 'too_many');
  });
});
