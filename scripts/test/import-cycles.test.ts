import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/** The project's own lint configuration, as `npx eslint .` (and so `npm test`) runs it. */
const CONFIG = fileURLToPath(new URL('../../eslint.config.js', import.meta.url));

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Lints these files, written into a fresh folder, with the project's config. */
async function lint(files: Record<string, string>): Promise<{ file: string; ruleId: string | null; message: string }[]> {
  const cwd = mkdtempSync(join(tmpdir(), 'danmaku-lint-'));
  dirs.push(cwd);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const eslint = new ESLint({ cwd, overrideConfigFile: CONFIG });
  const results = await eslint.lintFiles(Object.keys(files));
  return results.flatMap((r) => r.messages.map((m) => ({ file: r.filePath.slice(cwd.length + 1), ruleId: m.ruleId, message: m.message })));
}

test('two files that import each other, types only, fail the lint on both sides', async () => {
  const messages = await lint({
    'a.ts': "import type { B } from './b.js';\n\nexport interface A {\n  b?: B;\n}\n",
    'b.ts': "import type { A } from './a.js';\n\nexport interface B {\n  a?: A;\n}\n",
  });
  assert.deepEqual(
    messages.map((m) => [m.file, m.ruleId]),
    [
      ['a.ts', 'danmaku/no-import-cycle'],
      ['b.ts', 'danmaku/no-import-cycle'],
    ],
  );
  assert.match(messages[0]?.message ?? '', /Import cycle: a\.ts -> b\.ts -> a\.ts/);
});

test('a longer cycle through a re-export and an inline type import is named hop by hop', async () => {
  const messages = await lint({
    'a.ts': "import { b } from './b.js';\n\nexport const a = (): string => b;\n",
    'b.ts': "export { c as b } from './c.js';\n",
    'c.ts': "import { type a } from './a.js';\n\nexport const c = 'c';\nexport type C = typeof a;\n",
  });
  assert.deepEqual(
    messages.map((m) => m.file),
    ['a.ts', 'b.ts', 'c.ts'],
  );
  assert.ok(messages.every((m) => m.ruleId === 'danmaku/no-import-cycle'));
  assert.match(messages[0]?.message ?? '', /a\.ts -> b\.ts -> c\.ts -> a\.ts/);
});

test('one-way imports pass', async () => {
  const messages = await lint({
    'a.ts': "import type { B } from './b.js';\nimport { c } from './c.js';\n\nexport interface A {\n  b?: B;\n  c: typeof c;\n}\n",
    'b.ts': "import { c } from './c.js';\n\nexport interface B {\n  c: typeof c;\n}\n",
    'c.ts': "export const c = 'c';\n",
  });
  assert.deepEqual(messages, []);
});
