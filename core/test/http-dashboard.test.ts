import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { launchChromium, noBrowser, RawClient, cleanups } from '@meshbus/testkit';
import { MeshNode, silentLogger, startNode, type PeerView } from '../src/index.js';
import { startHttp, type HttpServer } from '../src/http/index.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const cleanup = cleanups();


describe('dashboard in headless chromium', () => {
  it('shows this node in the topology, live rates, top topics, and renders every node of /v1/cluster', async (ctx) => {
    const chromium = await launchChromium({ viewport: { width: 1280, height: 900 } });
    if (typeof chromium === 'string') noBrowser(ctx, 'dashboard test', chromium);
    cleanup.push(() => chromium.close());
    const browser = chromium.browser;

    const node: MeshNode = await startNode({ port: 0, logger: silentLogger, name: 'alpha' });
    cleanup.push(() => node.close());
    const http: HttpServer = await startHttp(node, { port: 0, host: '127.0.0.1', adminToken: 'dash-token' });
    cleanup.push(() => http.close());

    // Real traffic: a TCP subscriber and events published over TCP and HTTP, sampled into the history.
    const sub = await RawClient.connect(node.port, { name: 'dash-sub' });
    cleanup.push(() => sub.close());
    sub.sub('orders.>', 1);
    await sub.flush();
    const pub = await RawClient.connect(node.port);
    cleanup.push(() => pub.close());
    http.history.sample();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20 * (round + 1); i++) pub.pub('orders.eu.created', 'x');
      for (let i = 0; i < 3; i++) node.publishLocal('orders.us.created', Buffer.from('y'));
      await pub.flush();
      await new Promise((r) => setTimeout(r, 30));
      http.history.sample();
    }

    const page = browser.pages()[0] ?? (await browser.newPage());
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });

    await page.goto(`${http.url}/#token=dash-token`);
    const self = page.locator(`#topology [data-node-id="${node.id}"]`);
    await self.waitFor({ timeout: 10_000 });
    expect(await self.getAttribute('class')).toContain('self');
    expect(await self.textContent()).toContain('alpha');
    expect(await self.textContent()).toContain('this node');
    expect(await page.locator('#topology [data-node-id]').count()).toBe(1);
    await page.waitForFunction((id) => document.getElementById('node-id')?.textContent === id, node.id);
    expect(await page.locator('#status').textContent()).toBe('ready');
    // The rate chart has both series; the top topics list the hottest first.
    await page.locator('#rates polyline[data-series="msgsIn"]').waitFor();
    await page.locator('#rates polyline[data-series="msgsOut"]').waitFor();
    await page.waitForFunction(() => (document.querySelector('#topics tbody tr td')?.textContent ?? '') === 'orders.eu.created');
    const topics = await page.locator('#topics tbody tr td:first-child').allTextContents();
    expect(topics.slice(0, 2)).toEqual(['orders.eu.created', 'orders.us.created']);
    expect(Number(await page.locator('#t-conns').textContent())).toBe(2);
    // Not a --workers node: no workers card.
    expect(await page.locator('#workers-card').isHidden()).toBe(true);
    // The token came from the URL and is no longer in it.
    expect(page.url()).not.toContain('dash-token');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // N nodes: whatever /v1/cluster reports is drawn (a stand-in ClusterView until the cluster test drives a real mesh).
    const peers: PeerView[] = [
      { id: 'b0b0b0b0b0b0b0b0', name: 'beta', address: '127.0.0.1:7102', state: 'up', rttMs: 0.8, since: Date.now(), msgsIn: 12, msgsOut: 30 },
      { id: 'c0c0c0c0c0c0c0c0', name: 'gamma', address: '127.0.0.1:7103', state: 'connecting', since: Date.now(), msgsIn: 0, msgsOut: 0 },
    ];
    http.attachCluster({ ready: () => true, peers: () => peers });
    await page.waitForFunction(() => document.querySelectorAll('#topology [data-node-id]').length === 3, undefined, { timeout: 10_000 });
    expect(await page.locator('#topology line.link').count()).toBe(2);
    expect(await page.locator('#topology line.link.up').count()).toBe(1);
    await page.waitForFunction(() => document.querySelectorAll('#peers tbody tr').length === 2);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-simulated-peers.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
