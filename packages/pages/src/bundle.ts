/**
 * esbuild runs over the browser sources (see browser-code.ts): by `npm run build`
 * (scripts/build.sh writes dist/bundles/ with writeBundles), and in memory by a front run from
 * the sources. Always from the TypeScript sources, whether this module runs as source or compiled:
 * the "source" export condition picks the workspaces' src/ over their dist/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { PAGE_NAMES, SDK_FORMATS, pageScriptPath, sdkBundlePath, type PageScripts, type SdkBundles } from './bundle-layout.js';

// ../src/ from both src/ and dist/.
const BROWSER_DIR = fileURLToPath(new URL('../src/browser/', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const CONDITIONS = ['source'];

/** One esbuild run for every page script. */
export async function bundlePageScripts(): Promise<PageScripts> {
  const result = await build({
    entryPoints: PAGE_NAMES.map((name) => `${BROWSER_DIR}${name}.ts`),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: CONDITIONS,
    outdir: '/pages',
    write: false,
    minify: true,
    // Class names stay readable in stack traces from viewers' browsers.
    keepNames: true,
    logLevel: 'silent',
  });
  return new Map(result.outputFiles.map((file) => [file.path.slice('/pages/'.length), file.text]));
}

/** The client and `<danmaku-layer>` for other sites' pages: an ES module, and an IIFE that sets a global `Danmaku`. */
export async function bundleSdk(): Promise<SdkBundles> {
  const texts = await Promise.all(
    SDK_FORMATS.map(async (format): Promise<[string, string]> => {
      const result = await build({
        // Resolved as the pages package imports it.
        entryPoints: ['@danmaku/client/browser'],
        absWorkingDir: PACKAGE_DIR,
        bundle: true,
        platform: 'browser',
        format,
        ...(format === 'iife' ? { globalName: 'Danmaku' } : {}),
        target: 'es2020',
        conditions: CONDITIONS,
        write: false,
        minify: true,
        keepNames: true,
        legalComments: 'none',
        logLevel: 'silent',
      });
      return [format, result.outputFiles[0]?.text ?? ''];
    }),
  );
  return Object.fromEntries(texts) as SdkBundles;
}

/** Bundles everything into `dir` (npm run build: packages/pages/dist/bundles). */
export async function writeBundles(dir: string): Promise<void> {
  const [pages, sdk] = await Promise.all([bundlePageScripts(), bundleSdk()]);
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  };
  for (const name of PAGE_NAMES) {
    const text = pages.get(`${name}.js`);
    if (text === undefined) throw new Error(`esbuild wrote no ${name}.js`);
    write(pageScriptPath(dir, name), text);
  }
  for (const format of SDK_FORMATS) write(sdkBundlePath(dir, format), sdk[format]);
}
