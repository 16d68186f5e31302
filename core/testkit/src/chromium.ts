/**
 * Headless Chromium for the browser tests (dashboards, browser SDK): Debian's
 * package, never a downloaded browser. Without one, a test is reported as
 * skipped with the reason, or fails under MESHBUS_REQUIRE_BROWSER=1 (CI, which
 * installs chromium).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's chromium; MESHBUS_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env['MESHBUS_CHROMIUM'] ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export type BrowserContext = import('playwright-core').BrowserContext;

export interface Chromium {
  browser: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * A test that needs a browser and has none: a real skip (ctx.skip, counted
 * as skipped) with the reason printed, or an error under
 * MESHBUS_REQUIRE_BROWSER=1.
 */
export function noBrowser(ctx: { skip(note?: string): never }, what: string, why: string): never {
  const msg = `${what}: no usable headless chromium (${why}); install it with "apt-get install -y chromium"`;
  if (process.env['MESHBUS_REQUIRE_BROWSER'] === '1') throw new Error(`MESHBUS_REQUIRE_BROWSER=1 but ${msg}`);
  console.log(`SKIPPED ${msg}`);
  return ctx.skip(msg);
}

/**
 * Launches chromium headless with a fresh profile; the reason as a string
 * when there is no chromium, playwright-core does not load, or the launch
 * fails.
 */
export async function launchChromium(opts: { args?: string[]; viewport?: { width: number; height: number } } = {}): Promise<Chromium | string> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found`;
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    return `playwright-core not installed: ${(e as Error).message}`;
  }
  const profile = mkdtempSync(join(tmpdir(), 'meshbus-chromium-'));
  try {
    const browser = await playwright.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
    });
    return {
      browser,
      close: async () => {
        await browser.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    return `launch failed: ${(e as Error).message.split('\n')[0]}`;
  }
}
