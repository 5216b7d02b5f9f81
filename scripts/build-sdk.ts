/**
 * Builds `@danmaku/client` as an installable npm package (`npm run build:sdk`, then
 * `npm pack packages/client/npm-package`): ES modules for browsers and Node with the workspace's
 * `@danmaku/protocol` bundled in, `socket.io-client` left as the one dependency, type
 * declarations, the README. The workspace itself runs its sources or its `npm run build` output
 * (packages/client/dist), never this package.
 *
 * Entry points: `@danmaku/client` (createClient: Node and browsers), `@danmaku/client/stage`
 * (the renderer), `@danmaku/client/replay` (a live's comments for a playhead),
 * `@danmaku/client/layer` (defines `<danmaku-layer>`; browsers only) and
 * `@danmaku/client/artplayer` (artplayer-plugin-danmuku's source and live feed).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = join(ROOT, 'packages/client');
const ENTRIES = { index: 'index.ts', stage: 'stage.ts', replay: 'replay-feed.ts', layer: 'layer.ts', artplayer: 'artplayer.ts' } as const;

interface SourcePackage {
  name: string;
  version: string;
  description: string;
  dependencies: Record<string, string>;
}

/** Declarations of the client and of the protocol types it re-exports, side by side under types/. */
function declarations(outDir: string): void {
  const tmp = join(outDir, '.decl');
  const program = ts.createProgram(
    Object.values(ENTRIES).map((file) => join(CLIENT, 'src', file)),
    {
      declaration: true,
      emitDeclarationOnly: true,
      outDir: tmp,
      rootDir: join(ROOT, 'packages'),
      // Through paths, not node_modules: a module found there would count as a library's and
      // get no declarations of its own.
      paths: { '@danmaku/protocol': [join(ROOT, 'packages/protocol/src/index.ts')] },
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      types: [],
      strict: true,
      skipLibCheck: true,
    },
  );
  const result = program.emit();
  const errors = ts.getPreEmitDiagnostics(program).concat(result.diagnostics).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }));
  for (const pkg of ['client', 'protocol']) {
    const from = join(tmp, pkg, 'src');
    const to = join(outDir, 'types', pkg);
    mkdirSync(to, { recursive: true });
    for (const file of readdirSync(from)) {
      // The protocol is bundled, not a dependency: its types are imported from beside.
      const text = readFileSync(join(from, file), 'utf8').replaceAll("'@danmaku/protocol'", "'../protocol/index.js'");
      writeFileSync(join(to, file), text);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** Writes the package into `outDir` (replacing it) and returns its package.json. */
export async function buildSdkPackage(outDir = join(CLIENT, 'npm-package')): Promise<Record<string, unknown>> {
  const source = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')) as SourcePackage;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const external = Object.keys(source.dependencies).filter((name) => !name.startsWith('@danmaku/'));
  await build({
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, join(CLIENT, 'src', file)])),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    external,
    // The workspaces' TypeScript sources, not their dist/.
    conditions: ['source'],
    outdir: outDir,
    chunkNames: 'chunks/[name]-[hash]',
    keepNames: true,
    logLevel: 'silent',
  });
  declarations(outDir);
  const exportsMap = Object.fromEntries(
    Object.entries(ENTRIES).map(([name, file]) => [
      name === 'index' ? '.' : `./${name}`,
      { types: `./types/client/${file.replace(/\.ts$/, '.d.ts')}`, default: `./${name}.js` },
    ]),
  );
  const pkg = {
    name: source.name,
    version: source.version,
    description: source.description,
    type: 'module',
    exports: exportsMap,
    types: './types/client/index.d.ts',
    // Importing the layer defines the custom element.
    sideEffects: ['./layer.js', './chunks/*.js'],
    dependencies: Object.fromEntries(external.map((name) => [name, source.dependencies[name] as string])),
    // What it is tested on (packages/client/test/package.test.ts runs it on the repository's Node).
    engines: { node: '>=24' },
  };
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  copyFileSync(join(CLIENT, 'README.md'), join(outDir, 'README.md'));
  return pkg;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outDir = process.argv[2] ?? join(CLIENT, 'npm-package');
  await buildSdkPackage(outDir);
  process.stdout.write(`built ${relative(ROOT, outDir) || outDir}; pack it with: npm pack ${relative(process.cwd(), outDir)}\n`);
}
