/**
 * Browser bundle (ESM, headless Chromium): a page whose navigator.onLine
 * says false while the node is reachable (a platform that misreports, e.g.
 * a LAN without internet) must still reconnect after a drop. It waited for
 * an `online` event that never came: no attempt, disconnected for good.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger, startNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { type TcpProxy, tcpProxy, until, cleanups } from '@meshbus/testkit';
import { bundle } from './bundles.js';
import { browserPages, ESM_HARNESS } from './browser-pages.js';

const pages = browserPages({ '/meshbus.esm.js': () => bundle('meshbus.esm.js'), '/esm.html': () => ESM_HARNESS });

const cleanup = cleanups();

/** A TCP proxy to `target` (the test kit's); cut() ends the connections open through it. */
async function proxy(target: number): Promise<TcpProxy> {
  const px = await tcpProxy(target);
  cleanup.push(() => px.close());
  return px;
}

describe('browser bundle: the page says offline while the node is reachable', () => {
  it('navigator.onLine false at connect(): a dropped connection is made again (there was no attempt, for good)', async (ctx) => {
    const browser = pages.need(ctx);
    const node = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => node.close());
    const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1', origins: [pages.origin] }).listen();
    cleanup.push(() => gw.close());
    const px = await proxy(gw.port);
    const page = await browser.newPage();
    cleanup.push(() => page.close());
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false, configurable: true }));
    await page.goto(`${pages.origin}/esm.html`);
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
