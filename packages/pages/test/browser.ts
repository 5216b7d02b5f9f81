/**
 * The page tests' browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), headless and quiet (no updates, sync or QUIC probing on a test machine).
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A browser with its profile in `profileDir` (the caller removes it); `extraArgs` add Chromium switches. */
export function launchChromium(profileDir: string, extraArgs: readonly string[] = []): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    viewport: { width: 1280, height: 760 },
  });
}

/** What went wrong in the test's pages, whatever the asserts said. */
export interface PageProblems {
  /** Uncaught errors in any page: a page that throws is broken even if the asserts pass. */
  pageErrors: string[];
  /** Chromium's console reports of anything the pages' Content-Security-Policy blocked. */
  cspViolations: string[];
}

/** Records the page's uncaught errors and CSP reports under `label` (its path). */
export function watchPage(page: Page, label: string, problems: PageProblems): void {
  page.on('pageerror', (err) => problems.pageErrors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.cspViolations.push(`${label}: ${msg.text()}`);
  });
}
