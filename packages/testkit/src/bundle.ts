import { build } from 'esbuild';
import { REPO_ROOT } from './harness.js';

/**
 * Bundles a package entry (a path from the repository root) for the browser the way a page or an
 * app's bundler would, and returns the code; a build error rejects.
 */
export async function browserBundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [`${REPO_ROOT}/${entry}`],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    // The workspaces' TypeScript sources, not their dist/.
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  });
  if (result.errors.length > 0) throw new Error(`${entry}: ${result.errors.map((e) => e.text).join('; ')}`);
  return result.outputFiles[0]?.text ?? '';
}

/** Whether bundled code imports a Node built-in (which no browser has). */
export function importsNodeBuiltin(code: string): boolean {
  return /from\s*["']node:|require\(["']node:/.test(code);
}
