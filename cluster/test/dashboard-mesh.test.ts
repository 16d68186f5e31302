import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { startHttp, type HttpServer } from '@meshbus/core/http';
import { launchChromium, noBrowser, until, cleanups } from '@meshbus/testkit';
import { fullyMeshed, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const cleanup = cleanups();

async function meshWithHttp(n: number): Promise<Array<TestNode & { http: HttpServer }>> {
  const out: Array<TestNode & { http: HttpServer }> = [];
  for (let i = 0; i < n; i++) {
    const t = await startMeshNode(i === 0 ? {} : { seeds: [out[0]!.peerAddr] }, `node-${'abc'[i]}`);
    const http = await startHttp(t.node, { port: 0, host: '127.0.0.1', cluster: t.cluster });
    cleanup.push(() => stopMeshNode(t));
    cleanup.push(() => http.close());
    out.push({ ...t, http });
  }
  await until(() => fullyMeshed(out), 'full mesh');
  return out;
}

it('HTTP views a real 3-node mesh: /v1/cluster lists every node and link, /readyz is ready', async () => {
  const [a, b, c] = await meshWithHttp(3);
  await until(() => a!.cluster.links().length === 3, 'gossiped links');
  const view = (await (await fetch(`${a!.http.url}/v1/cluster`)).json()) as { nodes: Array<{ id: string }>; links: unknown[] };
  expect(view.nodes.map((x) => x.id).sort()).toEqual([a!.node.id, b!.node.id, c!.node.id].sort());
  expect(view.links).toHaveLength(3);
  expect((await fetch(`${b!.http.url}/readyz`)).status).toBe(200);
});

it('POST /v1/trace/:topic returns the path of an event through the mesh', async () => {
  const [a, , c] = await meshWithHttp(3);
  const res = await fetch(`${c!.http.url}/v1/trace/orders.x?wait=300`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'hello' });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { hops: Array<{ node: string; to: string[] }> };
  // No subscriber anywhere: the origin node reports one hop that went nowhere.
  expect(body.hops.map((h) => h.node)).toEqual([c!.node.id]);
  expect(body.hops[0]!.to).toEqual([]);
  void a;
});

it('the dashboard shows the three nodes of a running mesh', async (ctx) => {
  const chromium = await launchChromium({ viewport: { width: 1280, height: 900 } });
  if (typeof chromium === 'string') noBrowser(ctx, 'dashboard mesh test', chromium);
  cleanup.push(() => chromium.close());
  const browser = chromium.browser;
  const nodes = await meshWithHttp(3);
  await until(() => nodes[0]!.cluster.links().length === 3, 'gossiped links');
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${nodes[1]!.http.url}/`);
  await page.waitForFunction(() => document.querySelectorAll('#topology [data-node-id]').length === 3, undefined, { timeout: 10_000 });
  for (const t of nodes) expect(await page.locator(`#topology [data-node-id="${t.node.id}"]`).count()).toBe(1);
  expect(await page.locator(`#topology [data-node-id="${nodes[1]!.node.id}"]`).getAttribute('class')).toContain('self');
  await page.waitForFunction(() => document.querySelectorAll('#topology line.link.up').length === 3, undefined, { timeout: 10_000 });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-3-node-mesh.png'), fullPage: true });
});
