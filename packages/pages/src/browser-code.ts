/**
 * The browser code the front serves: each page's script (src/browser/<page>.ts with the client
 * SDK and hls.js) and the SDK for other sites (`@danmaku/client/browser` as an ES module and as
 * an IIFE). `npm run build` bundles them into dist/bundles/ beside the compiled plugin, and a
 * compiled front reads them from there at startup: it never loads esbuild (the image has none).
 * Run from the sources (tests, tsx) there is no bundles/ folder beside this module, so esbuild
 * bundles them in memory on the first request instead (bundle.ts, imported only then).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PAGE_NAMES, pageScriptPath, sdkBundlePath, type PageScripts, type SdkBundles } from './bundle-layout.js';

/** Where a build puts the bundles of the compiled module beside it: dist/bundles/. */
const PREBUILT_DIR = fileURLToPath(new URL('./bundles/', import.meta.url));

/**
 * One value per process: read from the prebuilt folder right away when there is one (a missing
 * file fails startup, not a viewer's request), else made by `make` on first use; a failed `make`
 * is forgotten so the next request retries.
 */
function once<T>(read: (dir: string) => T, make: () => Promise<T>): () => Promise<T> {
  if (existsSync(PREBUILT_DIR)) {
    const value = Promise.resolve(read(PREBUILT_DIR));
    return () => value;
  }
  let pending: Promise<T> | null = null;
  return () => {
    pending ??= make().catch((err: unknown) => {
      pending = null;
      throw err;
    });
    return pending;
  };
}

export function pageScripts(): () => Promise<PageScripts> {
  return once(
    (dir) => new Map(PAGE_NAMES.map((name) => [`${name}.js`, readFileSync(pageScriptPath(dir, name), 'utf8')])),
    async () => (await import('./bundle.js')).bundlePageScripts(),
  );
}

export function sdkBundles(): () => Promise<SdkBundles> {
  return once(
    (dir) => ({ esm: readFileSync(sdkBundlePath(dir, 'esm'), 'utf8'), iife: readFileSync(sdkBundlePath(dir, 'iife'), 'utf8') }),
    async () => (await import('./bundle.js')).bundleSdk(),
  );
}
