/**
 * The page tests' browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), headless and quiet (no updates, sync or QUIC probing on a test machine).
 */
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

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

/** A drawn danmaku: its text and its box in the page, read in one go with the others. */
export interface DrawnItem {
  text: string;
  mode: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/**
 * The danmaku drawn now under `stageSelector` (inside the shadow root of `hostSelector` when
 * given: the drop-in layer draws there), all boxes read in the same task, so they are one moment.
 */
export function drawnItems(page: Page, stageSelector: string, hostSelector?: string): Promise<DrawnItem[]> {
  return page.evaluate(
    ([selector, host]) => {
      const scope: ParentNode | null | undefined = host ? document.querySelector(host)?.shadowRoot : document;
      const items = Array.from(scope?.querySelectorAll<HTMLElement>(`${selector} .danmaku:not(.measuring)`) ?? []);
      // Drawn means visible: a standing item past its time is hidden before it is removed.
      return items.filter((el) => getComputedStyle(el).visibility !== 'hidden').map((el) => {
        const r = el.getBoundingClientRect();
        return { text: el.textContent ?? '', mode: el.dataset.mode ?? '', left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      });
    },
    [stageSelector, hostSelector ?? ''] as const,
  );
}

/** Every pair of drawn items whose boxes intersect (touching edges and sub-pixel rounding aside). */
export function overlaps(items: DrawnItem[]): string[] {
  const found: string[] = [];
  for (const [i, a] of items.entries()) {
    for (const b of items.slice(i + 1)) {
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (x > 0.5 && y > 0.5) found.push(`"${a.text}" (${a.mode}) over "${b.text}" (${b.mode}) by ${x.toFixed(1)}x${y.toFixed(1)} px`);
    }
  }
  return found;
}

/** The painted height of each column of a canvas (device pixels from its bottom to the first clearly painted pixel). */
export function paintedHeights(canvas: Locator): Promise<number[]> {
  return canvas.evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const data = (c.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, c.width, c.height).data;
    const heights: number[] = [];
    for (let x = 0; x < c.width; x++) {
      let top = c.height;
      for (let y = 0; y < c.height; y++) {
        if ((data[(y * c.width + x) * 4 + 3] ?? 0) > 40) {
          top = y;
          break;
        }
      }
      heights.push(c.height - top);
    }
    return heights;
  });
}
