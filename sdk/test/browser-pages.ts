/**
 * What the SDK's browser tests share: an HTTP server on loopback serving the
 * test pages (the bundles and harness pages), and one headless Chromium per
 * test file, both started in the file's beforeAll and stopped in its afterAll.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import { type BrowserContext, type Chromium, launchChromium, noBrowser as skipOrFail } from '@meshbus/testkit';

type Ctx = { skip(note?: string): never };

/** The ESM bundle as a module at `/meshbus.esm.js`: a harness the tests drive through page.evaluate. */
export const ESM_HARNESS = `<!doctype html><html><head><meta charset="utf-8"><title>esm</title></head><body>
<script type="module">
  import * as meshbus from '/meshbus.esm.js';
  window.meshbus = meshbus;
  window.ready = true;
</script></body></html>`;

export interface BrowserPages {
  /** `http://127.0.0.1:<port>` of the page server (set once beforeAll ran). */
  readonly origin: string;
  /** The browser, or undefined when it could not be launched. */
  readonly browser: BrowserContext | undefined;
  /** Skips the test with the launch problem (or fails under MESHBUS_REQUIRE_BROWSER=1) when there is no browser; else the browser. */
  need(ctx: Ctx): BrowserContext;
}

/**
 * Serves `pages` (path → body; `.js` paths as JavaScript, others as HTML, 404
 * otherwise) and launches Chromium with the arguments `args()` gives (called
 * in beforeAll, so it may pick ports first).
 */
export function browserPages(pages: Record<string, () => string>, args: () => Promise<string[]> | string[] = () => []): BrowserPages {
  let server: Server | undefined;
  let chromium: Chromium | undefined;
  let problem = 'not launched';
  const state = { origin: '', browser: undefined as BrowserContext | undefined };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const page = pages[(req.url ?? '/').split('?')[0]!];
      if (!page) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': req.url!.endsWith('.js') ? 'text/javascript' : 'text/html' });
      res.end(page());
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    state.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const launched = await launchChromium({ args: await args() });
    if (typeof launched === 'string') problem = launched;
    else {
      chromium = launched;
      state.browser = launched.browser;
    }
  });
  afterAll(async () => {
    await chromium?.close();
    if (server) await new Promise<void>((r) => server!.close(() => r()));
  });
  return {
    get origin() {
      return state.origin;
    },
    get browser() {
      return state.browser;
    },
    need(ctx) {
      if (!state.browser) skipOrFail(ctx, 'browser SDK test', problem);
      return state.browser!;
    },
  };
}
