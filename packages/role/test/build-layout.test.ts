/**
 * The build's layout, checked without building anything (npm test builds before the tests; the
 * image cannot be built on a machine without a container engine):
 * - the Node major is one: scripts/lib/node.sh installs it, the Dockerfile's images use it,
 *   .nvmrc, engines and @types/node name it, and neither the image nor role.sh runs tsx;
 * - each workspace compiles alone (`tsc -b`): its tsconfig references exactly the workspaces its
 *   src/ imports, which its package.json names, and its exports lead to the sources under the
 *   "source" condition and to dist/ otherwise;
 * - a role's entry runs compiled, a fixture from its source (`@danmaku/role/entry`), and a
 *   process loads the workspaces either compiled or as sources, never a mix.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '@danmaku/testkit';
import { SOURCE_CONDITION, SOURCE_FLAGS, compiledEntry, nodeArgs } from '../src/entry.js';

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');
/** tsconfig files may hold comments. */
const readJsonc = (path: string): unknown => JSON.parse(read(path).replace(/^\s*\/\/.*$/gm, ''));

interface Manifest {
  name: string;
  exports: Record<string, Record<string, string>>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  engines?: { node?: string };
}

const workspaces = ['apps', 'packages'].flatMap((group) =>
  readdirSync(join(REPO_ROOT, group))
    .map((name) => `${group}/${name}`)
    .filter((dir) => existsSync(join(REPO_ROOT, dir, 'package.json'))),
);
const manifests = new Map(workspaces.map((dir) => [dir, JSON.parse(read(`${dir}/package.json`)) as Manifest]));
const dirOf = new Map([...manifests].map(([dir, m]) => [m.name, dir]));

const nodeMajor = Number(/^DANMAKU_NODE_MAJOR=(\d+)$/m.exec(read('scripts/lib/node.sh'))?.[1]);

describe('one Node major everywhere', () => {
  test('scripts/lib/node.sh names a maintained major', () => {
    assert.ok(nodeMajor >= 22, `DANMAKU_NODE_MAJOR=${nodeMajor}`);
  });

  test('every stage of the Dockerfile runs that major', () => {
    const froms = [...read('Dockerfile').matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ image: m[1] as string, stage: m[2] }));
    const stages = new Set(froms.map((f) => f.stage));
    const images = froms.map((f) => f.image).filter((image) => !stages.has(image));
    assert.ok(images.length >= 2, 'a build stage and a runtime stage');
    for (const image of images) assert.match(image, new RegExp(`^node:${nodeMajor}-`), `FROM ${image}`);
  });

  test('.nvmrc, engines and @types/node name it', () => {
    const root = JSON.parse(read('package.json')) as Manifest & { devDependencies: Record<string, string> };
    assert.equal(read('.nvmrc').trim(), String(nodeMajor));
    assert.equal(root.engines?.node, `>=${nodeMajor}`);
    assert.match(root.devDependencies['@types/node'] ?? '', new RegExp(`^\\^${nodeMajor}\\.`));
    for (const [dir, m] of manifests) if (m.engines?.node) assert.equal(m.engines.node, `>=${nodeMajor}`, dir);
  });

  test('the image and its entry point run compiled JavaScript, never tsx', () => {
    for (const file of ['Dockerfile', 'scripts/role.sh']) {
      const code = read(file).split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
      assert.doesNotMatch(code, /tsx|\.ts\b/, `${file} runs TypeScript`);
    }
    assert.match(read('scripts/role.sh'), /exec node --enable-source-maps \$flags "\$entry"/);
    assert.match(read('Dockerfile'), /--omit=dev/);
  });
});

describe('workspaces build alone and resolve their own kind', () => {
  test('tsconfig.build.json references every workspace', () => {
    const build = readJsonc('tsconfig.build.json') as { references: { path: string }[] };
    assert.deepEqual(build.references.map((r) => r.path.replace(/^\.\//, '')).sort(), [...workspaces].sort());
  });

  for (const dir of workspaces) {
    test(`${dir}: references the workspaces its src/ imports, named in its package.json`, () => {
      const manifest = manifests.get(dir) as Manifest;
      const config = readJsonc(`${dir}/tsconfig.json`) as { extends: string; references?: { path: string }[] };
      assert.equal(config.extends, '../../tsconfig.workspace.json');
      const imported = new Set<string>();
      const src = join(REPO_ROOT, dir, 'src');
      for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
        for (const m of readFileSync(join(src, file), 'utf8').matchAll(/(?:from|import\(?)\s*'(@danmaku\/[a-z-]+)/g)) imported.add(m[1] as string);
      }
      imported.delete(manifest.name);
      const wanted = [...imported].map((name) => {
        const target = dirOf.get(name);
        assert.ok(target, `${dir} imports ${name}, which is no workspace`);
        assert.ok(manifest.dependencies?.[name] ?? manifest.devDependencies?.[name], `${dir}/package.json does not name ${name}`);
        return `../../${target}`;
      });
      assert.deepEqual((config.references ?? []).map((r) => r.path).sort(), wanted.sort(), `${dir}/tsconfig.json "references" must list the workspaces its src/ imports`);
    });

    test(`${dir}: exports the source under "${SOURCE_CONDITION}", the compiled file otherwise`, () => {
      const exportsMap = (manifests.get(dir) as Manifest).exports;
      assert.ok(exportsMap['.'], 'a main entry');
      for (const [key, target] of Object.entries(exportsMap)) {
        assert.deepEqual(Object.keys(target), [SOURCE_CONDITION, 'types', 'default'], `${key}: the source condition first, the compiled default last`);
        const source = target[SOURCE_CONDITION] as string;
        assert.ok(existsSync(join(REPO_ROOT, dir, source)), `${key}: ${source} exists`);
        const compiled = source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
        assert.deepEqual(target, { [SOURCE_CONDITION]: source, types: `${compiled}.d.ts`, default: `${compiled}.js` }, key);
      }
    });
  }
});

describe('entries', () => {
  test('a workspace source runs compiled, with source maps', () => {
    assert.equal(compiledEntry('apps/front/src/main.ts'), 'apps/front/dist/main.js');
    assert.equal(compiledEntry('apps/archiver/src/migrate.ts'), 'apps/archiver/dist/migrate.js');
    assert.equal(compiledEntry('packages/bus/test/fixtures/member.ts'), null);
    assert.deepEqual(nodeArgs(REPO_ROOT, 'apps/front/src/main.ts'), ['--enable-source-maps', join(REPO_ROOT, 'apps/front/dist/main.js')]);
  });

  test('anything else runs its TypeScript through tsx, resolving the workspaces to their sources', () => {
    assert.deepEqual(nodeArgs(REPO_ROOT, 'bench/load.ts'), [`--conditions=${SOURCE_CONDITION}`, '--import', 'tsx', join(REPO_ROOT, 'bench/load.ts')]);
  });

  test('a role not built yet fails with what to do', () => {
    assert.throws(() => nodeArgs(join(REPO_ROOT, 'no-such-checkout'), 'apps/front/src/main.ts'), /apps\/front\/dist\/main\.js is missing: npm run build/);
  });
});

describe('a process loads one copy of each workspace', () => {
  /** The repository files a node process with `flags` loads while importing `specifier` (a module hook lists them). */
  function loadedFiles(flags: string[], specifier: string): string[] {
    const hook = `data:text/javascript,${encodeURIComponent(
      'import { registerHooks } from "node:module"; registerHooks({ load(url, context, next) { if (url.startsWith("file:")) process.stdout.write("LOADED " + url + "\\n"); return next(url, context); } });',
    )}`;
    // Without the test runner's variables: the child is no test file.
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
    const out = execFileSync(process.execPath, [...flags, '--import', hook, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)}); process.exit(0);`], { cwd: REPO_ROOT, encoding: 'utf8', env });
    const root = `file://${REPO_ROOT.replace(/\/$/, '')}/`;
    return out
      .split('\n')
      .filter((line) => line.startsWith(`LOADED ${root}`) && !line.includes('/node_modules/'))
      .map((line) => line.slice(`LOADED ${root}`.length));
  }

  test('a compiled role loads only dist/ files', () => {
    const files = loadedFiles(['--enable-source-maps'], './apps/standalone/dist/index.js');
    assert.ok(files.some((f) => f.startsWith('packages/store/dist/')), `the workspaces it imports, compiled: ${files.join(' ')}`);
    assert.deepEqual(files.filter((f) => !/^(apps|packages)\/[^/]+\/dist\//.test(f)), []);
  });

  test('a test process loads only src/ files', () => {
    const files = loadedFiles([...SOURCE_FLAGS], '@danmaku/standalone');
    assert.ok(files.some((f) => f.startsWith('packages/store/src/')), `the workspaces it imports, as sources: ${files.join(' ')}`);
    assert.deepEqual(files.filter((f) => !/^(apps|packages)\/[^/]+\/src\//.test(f)), []);
  });
});
