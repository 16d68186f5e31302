import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { startHttp, type HttpServer } from '@meshbus/core/http';
import { fullyMeshed, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';
import { launchChromium, noBrowser, cleanups, RawClient } from '@meshbus/testkit';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const TOKEN = 'mesh-admin-token';

const cleanup = cleanups();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean | Promise<boolean>, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

type Node = TestNode & { http: HttpServer };

/** A full mesh of nodes with an HTTP API each; `tokens[i]` is node i's admin token. */
async function mesh(tokens: Array<string | undefined>): Promise<Node[]> {
  const out: Node[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = await startMeshNode(i === 0 ? {} : { seeds: [out[0]!.peerAddr] }, `node-${'abc'[i]}`);
    const http = await startHttp(t.node, { port: 0, host: '127.0.0.1', cluster: t.cluster, ...(tokens[i] !== undefined ? { adminToken: tokens[i] } : {}) });
    cleanup.push(() => stopMeshNode(t));
    cleanup.push(() => http.close());
    out.push({ ...t, http });
  }
  await until(() => fullyMeshed(out), 'full mesh');
  return out;
}

interface MeshView {
  self: string;
  nodes: Array<{ id: string; name: string; self: boolean; summary?: { connections: number; name: string; slowConsumers: Array<{ clientId: string; state: string; name: string }> }; error?: { code: string } }>;
}

async function meshView(n: Node, token: string | undefined = TOKEN): Promise<MeshView> {
  const r = await fetch(`${n.http.url}/v1/mesh`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as MeshView;
}

/** A client on `n` that subscribes and stops reading until the node has it congested or dropping ('drop' policy: it stays connected). */
async function congestedClient(n: Node, name: string): Promise<RawClient> {
  const c = await RawClient.connect(n.node.port, { name });
  cleanup.push(() => c.close());
  c.sub('bulk.>', 1, { slow: 'drop' });
  await c.flush();
  c.socket.pause();
  const session = [...n.node.connections()].find((s) => s.name === name)!;
  const chunk = Buffer.alloc(64 * 1024, 1);
  await until(() => {
    const slow = (): boolean => session.congested || session.dropped > 0;
    for (let i = 0; i < 8 && !slow(); i++) n.node.publishLocal('bulk.x', chunk);
    return slow();
  }, 'a congested subscriber');
  return c;
}

it("GET /v1/mesh on one node gives every node's figures, asked over the mesh; a node with another admin token refuses", async () => {
  const [a, b, c] = await mesh([TOKEN, TOKEN, 'another-token']);
  const one = await RawClient.connect(b!.node.port, { name: 'b-client' });
  cleanup.push(() => one.close());
  await congestedClient(b!, 'b-slow');

  await until(async () => (await meshView(a!)).nodes.find((n) => n.id === b!.node.id)?.summary?.connections === 2, "b's figures on a");
  const v = await meshView(a!);
  expect(v.self).toBe(a!.node.id);
  expect(v.nodes.map((n) => n.id).sort()).toEqual([a!.node.id, b!.node.id, c!.node.id].sort());
  expect(v.nodes.find((n) => n.self)!.id).toBe(a!.node.id);
  const bs = v.nodes.find((n) => n.id === b!.node.id)!.summary!;
  expect(bs.name).toBe('node-b');
  expect(bs.slowConsumers.map((s) => [s.name, s.state])).toEqual([['b-slow', 'open']]);
  // c's API has another admin token: a cannot read it (and says why).
  expect(v.nodes.find((n) => n.id === c!.node.id)!.error?.code).toBe('MB_ERR_PERMISSION_DENIED');
  expect(v.nodes.find((n) => n.id === c!.node.id)!.summary).toBeUndefined();
  // The route itself needs a's admin token.
  expect((await fetch(`${a!.http.url}/v1/mesh`)).status).toBe(401);
});

it('a client cannot read a node\'s figures through the mesh: no reply to its own inbox, and it cannot subscribe to the stats topic', async () => {
  const [a, b] = await mesh([undefined, undefined]);
  void a;
  const spy = await RawClient.connect(a!.node.port, { name: 'spy' });
  cleanup.push(() => spy.close());
  // Every topic it may see (reserved ones are filtered for wildcard subscribers).
  spy.sub('>', 1);
  spy.sub(`_INBOX.${spy.clientId}.>`, 2);
  spy.sub(`_INBOX.${b!.node.id}.dash.stats`, 3);
  await spy.flush();
  const refused = await spy.waitFor((g) => g.type === FrameType.ERROR);
  expect(refused.error).toBe('MB_ERR_PERMISSION_DENIED');
  const ask = (reply: string, correlation: number) =>
    spy.send({ type: FrameType.REQ, topic: `_INBOX.${b!.node.id}.dash.stats`, correlation, payload: Buffer.from(JSON.stringify({ nonce: '0'.repeat(32) })), ext: { reply } });
  ask(`_INBOX.${spy.clientId}.stats`, 11);
  ask(`_INBOX.${a!.node.id}.http.${'f'.repeat(32)}`, 12);
  // A round trip through b that does answer (a's own view), so anything b sent the spy has arrived by now.
  await until(async () => (await meshView(a!, undefined)).nodes.find((n) => n.id === b!.node.id)?.summary !== undefined, "b's figures on a");
  await spy.flush();
  const leaked = spy.got.filter((g) => g.type === FrameType.PUB || g.type === FrameType.REQ).filter((g) => g.topic.startsWith('_INBOX.') || g.payload.toString().includes('slowConsumers'));
  expect(leaked).toEqual([]);
});

it("the dashboard shows every node's connections, rates and slow consumers of a 2-node mesh at 1440x900, unclipped", async (ctx) => {
  const chromium = await launchChromium({ viewport: { width: 1440, height: 900 } });
  if (typeof chromium === 'string') noBrowser(ctx, 'mesh-wide dashboard test', chromium);
  cleanup.push(() => chromium.close());
  const [a, b] = await mesh([TOKEN, TOKEN]);
  const slow = await congestedClient(b!, '<b>slow on b</b>');
  void slow;

  const page = chromium.browser.pages()[0] ?? (await chromium.browser.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${a!.http.url}/#token=${TOKEN}`);
  await page.waitForFunction(() => document.querySelectorAll('#mesh tbody tr').length === 2, undefined, { timeout: 10_000 });
  const bRow = page.locator('#mesh tbody tr', { hasText: 'node-b' });
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll('#mesh tbody tr')].find((r) => r.textContent?.includes('node-b'));
    return row?.querySelectorAll('td')[2]?.textContent === '1';
  }, undefined, { timeout: 10_000 });
  expect(await bRow.locator('td').nth(1).textContent()).toBe('ready');
  expect(await page.locator('#mesh tbody tr.self td').first().textContent()).toBe('node-a (this node)');
  // b's slow consumer, named as text, in the mesh-wide list.
  const slowRow = page.locator('#mesh-slow tbody tr', { hasText: 'node-b' });
  await slowRow.waitFor({ timeout: 10_000 });
  expect(await slowRow.locator('td').nth(1).textContent()).toContain('<b>slow on b</b>');
  expect(await page.locator('#mesh-slow b').count()).toBe(0);
  expect(await page.locator('#mesh-count').textContent()).toBe('2 of 2 nodes answered');
  const overflow = await page.evaluate(() => {
    const out: string[] = [];
    for (const t of Array.from(document.querySelectorAll('table'))) {
      if (t.scrollWidth > t.parentElement!.clientWidth) out.push(`#${t.id}`);
      for (const cell of Array.from(t.querySelectorAll('th, td')) as HTMLElement[]) if (cell.scrollWidth > cell.clientWidth) out.push(`#${t.id} "${cell.textContent}"`);
    }
    return out;
  });
  expect(overflow).toEqual([]);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-2-node-mesh-wide.png'), fullPage: true });
  expect(problems).toEqual([]);
});
