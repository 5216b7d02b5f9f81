/**
 * What the browser bundles are and where they lie in a bundles folder: shared by the writer
 * (bundle.ts, at build time) and the reader (browser-code.ts, in the front).
 */
import { join } from 'node:path';

export const PAGE_NAMES = ['viewer', 'replay', 'studio', 'admin', 'overlay'] as const;
export type PageName = (typeof PAGE_NAMES)[number];
export const SDK_FORMATS = ['esm', 'iife'] as const;
export type SdkFormat = (typeof SDK_FORMATS)[number];

/** Page scripts by their served name (`viewer.js`). */
export type PageScripts = Map<string, string>;
export type SdkBundles = Record<SdkFormat, string>;

/** Paths inside a bundles folder. */
export const pageScriptPath = (dir: string, name: PageName): string => join(dir, 'pages', `${name}.js`);
export const sdkBundlePath = (dir: string, format: SdkFormat): string => join(dir, 'sdk', `${format}.js`);
