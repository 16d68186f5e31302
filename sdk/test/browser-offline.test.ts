/**
 * Browser bundle (ESM, headless Chromium): a page whose navigator.onLine
 * says false while the node is reachable (a platform that misreports, e.g.
 * a LAN without internet) must still reconnect after a drop. It waited for
 * an `online` event that never came: no attempt, disconnected for good.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, startNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { type BrowserContext, type Chromium, type TcpProxy, launchChromium, noBrowser as skipOrFail, tcpProxy, until, cleanups } from '@meshbus/testkit';
import { bundle } from './bundles.js';

type Ctx = { skip(note?: string): never };
const noBrowser = (ctx: Ctx, why: string): never => skipOrFail(ctx, 'browser SDK test', why);

let pageServer: Server;
let pageOrigin = '';
let chromium: Chromium | undefined;
let browser: BrowserContext | undefined;
let launchProblem: string | undefined;

const PAGES: Record<string, () => string> = {
  '/meshbus.esm.js': () => bundle('meshbus.esm.js'),
  '/esm.html': () => `<!doctype html><html><head><meta charset="utf-8"><title>esm</title></head><body>
<script type="module">
  import * as meshbus from '/meshbus.esm.js';
  window.meshbus = meshbus;
  window.ready = true;
</script></body></html>`,
};

beforeAll(async () => {
  pageServer = createServer((req, res) => {
    const page = PAGES[(req.url ?? '/').split('?')[0]!];
    if (!page) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': req.url!.endsWith('.js') ? 'text/javascript' : 'text/html' });
    res.end(page());
  });
  await new Promise<void>((r) => pageServer.listen(0, '127.0.0.1', r));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as { port: number }).port}`;
  const launched = await launchChromium();
  if (typeof launched === 'string') launchProblem = launched;
  else {
    chromium = launched;
    browser = launched.browser;
  }
});

afterAll(async () => {
  await chromium?.close();
  await new Promise<void>((r) => pageServer.close(() => r()));
});

const cleanup = cleanups();

/** A TCP proxy to `target` (the test kit's); cut() ends the connections open through it. */
async function proxy(target: number): Promise<TcpProxy> {
  const px = await tcpProxy(target);
  cleanup.push(() => px.close());
  return px;
}

describe('browser bundle: the page says offline while the node is reachable', () => {
  it('navigator.onLine false at connect(): a dropped connection is made again (there was no attempt, for good)', async (ctx) => {
    if (!browser) noBrowser(ctx, launchProblem ?? 'not launched');
    const node = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => node.close());
    const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1', origins: [pageOrigin] }).listen();
    cleanup.push(() => gw.close());
    const px = await proxy(gw.port);
    const page = await browser!.newPage();
    cleanup.push(() => page.close());
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false, configurable: true }));
    await page.goto(`${pageOrigin}/esm.html`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready);
    type W = { meshbus: { connect(u: string, o: object): Promise<{ isConnected: boolean; close(): Promise<void> }> }; c: { isConnected: boolean; close(): Promise<void> } };
    await page.evaluate(async (url) => {
      const w = window as unknown as W;
      w.c = await w.meshbus.connect(url, { reconnectBackoff: { base: 10, max: 300 } });
    }, `ws://127.0.0.1:${px.port}/`);
    cleanup.push(() => page.evaluate(() => (window as unknown as W).c.close()).catch(() => {}));
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    px.cut();
    await until(async () => !(await page.evaluate(() => (window as unknown as W).c.isConnected)), 'dropped', 5000);
    // No `online` event comes: the page must come back by itself.
    await until(() => page.evaluate(() => (window as unknown as W).c.isConnected), 'reconnected without an online event', 5000);
    expect(px.dials()).toBeGreaterThanOrEqual(2);
  });
});
