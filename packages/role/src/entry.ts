/**
 * How a process of this repository is started from an entry named by its source path, e.g.
 * `apps/front/src/main.ts`. A workspace's source runs compiled, as every role does: node
 * --enable-source-maps on its dist/ counterpart, which `npm run build` writes. Anything else (a
 * test fixture, a bench script) runs from its TypeScript through tsx, resolving the workspaces to
 * their sources (the "source" export condition), as the tests themselves do: a process loads
 * either the compiled workspaces or their sources, never both.
 *
 * Its own entry point (`@danmaku/role/entry`): the supervisor and the test kit load this, not the
 * roles' code.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The export condition under which every workspace resolves to its src/ (see any package.json). */
export const SOURCE_CONDITION = 'source';

/** Node's flags that run TypeScript sources, the workspaces' included. */
export const SOURCE_FLAGS: readonly string[] = [`--conditions=${SOURCE_CONDITION}`, '--import', 'tsx'];

/** The compiled file of a workspace source path (`apps/x/src/a/b.ts` -> `apps/x/dist/a/b.js`), or null for any other path. */
export function compiledEntry(entry: string): string | null {
  const match = /^((?:apps|packages)\/[^/]+)\/src\/(.+)\.ts$/.exec(entry);
  return match ? `${match[1]}/dist/${match[2]}.js` : null;
}

/** Node's arguments that run `entry` (relative to `root`, the repository) as described above. */
export function nodeArgs(root: string, entry: string): string[] {
  const compiled = compiledEntry(entry);
  if (compiled === null) return [...SOURCE_FLAGS, join(root, entry)];
  const path = join(root, compiled);
  if (!existsSync(path)) throw new Error(`${compiled} is missing: npm run build compiles ${entry} (npm test and the start scripts build first)`);
  return ['--enable-source-maps', path];
}
