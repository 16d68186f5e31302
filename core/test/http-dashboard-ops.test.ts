import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MeshNode, silentLogger, startNode } from '../src/index.js';
import { startHttp, type HttpServer } from '../src/http/index.js';
import { RawClient, cleanups, launchChromium, noBrowser, requireRedisServer, startRedisServer } from '@meshbus/testkit';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const TOKEN = 'ops-token';
/** A client name made of markup: the page must show it as text. */
const MARKUP_NAME = '<img src=x onerror="window.__pwned=1"> a client with a rather long name that must wrap, not be cut';

const cleanup = cleanups();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function stats(http: HttpServer): Promise<{ topTopics: Array<{ topic: string }>; slowConsumers: Array<{ clientId: string; state: string; name: string }>; durability: { on: boolean } }> {
  const r = await fetch(`${http.url}/v1/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await r.json()) as never;
}

/**
 * Tables fit their cards at the page's width: every table no wider than its
 * container, and no cell whose content is wider than the cell (clipped or
 * cut with an ellipsis). Returns the offenders.
 */
function overflowing(): string[] {
  const out: string[] = [];
  for (const t of Array.from(document.querySelectorAll('table'))) {
    const box = t.parentElement!;
    if (t.scrollWidth > box.clientWidth) out.push(`#${t.id} ${t.scrollWidth} > card ${box.clientWidth}`);
    for (const c of Array.from(t.querySelectorAll('th, td')) as HTMLElement[]) {
      if (c.scrollWidth > c.clientWidth) out.push(`#${t.id} cell "${c.textContent}" ${c.scrollWidth} > ${c.clientWidth}`);
    }
  }
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth) out.push('the page scrolls sideways');
  return out;
}

describe('dashboard operations view in headless chromium (1440x900)', () => {
  it('asks for the admin token instead of "unreachable", then shows connections, user topics only, and slow consumers as they are disconnected, all as text and unclipped', async (ctx) => {
    const chromium = await launchChromium({ viewport: { width: 1440, height: 900 } });
    if (typeof chromium === 'string') noBrowser(ctx, 'dashboard operations test', chromium);
    cleanup.push(() => chromium.close());

    const node: MeshNode = await startNode({ port: 0, logger: silentLogger, name: 'ops', maxPending: 4 * 1024 * 1024 });
    cleanup.push(() => node.close());
    const http: HttpServer = await startHttp(node, { port: 0, host: '127.0.0.1', adminToken: TOKEN });
    cleanup.push(() => http.close());

    // Application traffic, and more of the mesh's own: reply-inbox and trace-hop topics.
    const pub = await RawClient.connect(node.port, { name: 'publisher' });
    cleanup.push(() => pub.close());
    for (let i = 0; i < 20; i++) pub.pub('orders.eu.created', 'x');
    for (let i = 0; i < 5; i++) pub.pub('xss.&lt;i&gt;', 'x');
    await pub.flush();
    for (let i = 0; i < 200; i++) node.publishLocal('_INBOX.0123456789abcdef.http.x', Buffer.from('r'));
    for (let i = 0; i < 3; i++) {
      const t = await fetch(`${http.url}/v1/trace/orders.eu.created?wait=20`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: 'x' });
      expect(t.status).toBe(200);
    }
    // The node does not count its own topics (a reply topic is new at every request: counting them
    // cost a decode and an entry each, and could fill the counter), and the view leaves out any `_` topic.
    for (let i = 0; i < 2000; i++) node.publishLocal(`_INBOX.0123456789abcdef.${i}.tok`, Buffer.from('r'));
    expect(node.topTopics.top(100).filter((t) => t.topic.startsWith('_'))).toEqual([]);
    expect((await stats(http)).topTopics.map((t) => t.topic)).toEqual(['orders.eu.created', 'xss.&lt;i&gt;']);

    // A subscriber that stops reading: congested first (listed 'open'), then disconnected by the node.
    const slow = await RawClient.connect(node.port, { name: MARKUP_NAME });
    slow.sub('bulk.>', 1, { slow: 'disconnect' });
    await slow.flush();
    slow.socket.pause();
    const session = [...node.connections()].find((c) => c.name === MARKUP_NAME)!;
    const chunk = Buffer.alloc(64 * 1024, 7);
    await until(() => {
      if (!session.congested) node.publishLocal('bulk.x', chunk);
      return session.congested;
    }, 'a congested subscriber');
    expect(session.isOpen).toBe(true);
    await until(async () => (await stats(http)).slowConsumers.some((c) => c.clientId === session.clientId && c.state === 'open'), 'the slow consumer listed open');

    const browser = chromium.browser;
    const page = browser.pages()[0] ?? (await browser.newPage());
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401|403/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // No token yet: a prompt, not "unreachable".
    await page.goto(`${http.url}/`);
    await page.locator('#auth').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toBe('admin token needed');
    expect(await page.locator('#error').textContent()).toBe('');
    await sleep(1500); // a few polling ticks: still the prompt, never "unreachable"
    expect(await page.locator('#status').textContent()).toBe('admin token needed');

    // A wrong token: asked again.
    await page.fill('#token', 'not-the-token');
    await page.click('#auth-form button');
    await page.waitForFunction(() => (document.getElementById('auth-why')?.textContent ?? '').includes('refused'), undefined, { timeout: 10_000 });
    expect(await page.locator('#auth').isVisible()).toBe(true);

    // The right one: kept in sessionStorage, sent as Bearer, the views load.
    await page.fill('#token', TOKEN);
    await page.click('#auth-form button');
    await page.waitForFunction((id) => document.getElementById('node-id')?.textContent === id, node.id, { timeout: 10_000 });
    expect(await page.evaluate(() => sessionStorage.getItem('meshbus.token'))).toBe(TOKEN);
    expect(await page.locator('#auth').isVisible()).toBe(false);
    expect(await page.locator('#status').textContent()).toBe('ready');

    // Top topics: the application's only, markup-looking text shown verbatim.
    await page.waitForFunction(() => document.querySelectorAll('#topics tbody tr').length === 3, undefined, { timeout: 10_000 });
    expect((await page.locator('#topics tbody tr td:first-child').allTextContents()).sort()).toEqual(['bulk.x', 'orders.eu.created', 'xss.&lt;i&gt;']);

    // Connections table: every client, names as text.
    await page.waitForFunction(() => document.querySelectorAll('#conns tbody tr').length === 2, undefined, { timeout: 10_000 });
    const names = await page.locator('#conns tbody tr td:nth-child(2)').allTextContents();
    expect(names.sort()).toEqual([MARKUP_NAME, 'publisher'].sort());
    expect(await page.locator('#conns tbody tr td:first-child').allTextContents()).toContain(session.clientId);

    // The slow consumer, open.
    const slowRow = page.locator('#slow tbody tr', { hasText: session.clientId.slice(0, 8) });
    await slowRow.waitFor({ timeout: 10_000 });
    expect(await slowRow.locator('td.state').textContent()).toBe('open');
    expect(overflowing.toString().length).toBeGreaterThan(0);
    expect(await page.evaluate(overflowing)).toEqual([]);

    // Past maxPending: the node disconnects it; the page keeps it, marked.
    await until(() => {
      if (session.isOpen) node.publishLocal('bulk.x', chunk);
      return !session.isOpen;
    }, 'the slow consumer disconnected');
    expect(node.stats.slowConsumers).toBe(1);
    slow.close();
    await until(() => ![...node.connections()].includes(session), 'the session gone from the node');
    await page.waitForFunction(() => document.querySelector('#slow tbody tr.gone td.state')?.textContent === 'disconnected', undefined, { timeout: 10_000 });
    expect(await page.locator('#slow tbody tr.gone td:first-child').textContent()).toContain(MARKUP_NAME);
    const listed = (await stats(http)).slowConsumers.find((c) => c.clientId === session.clientId);
    expect(listed?.state).toBe('disconnected');
    await page.waitForFunction(() => document.querySelectorAll('#conns tbody tr').length === 1, undefined, { timeout: 10_000 });

    // Nothing from a client became markup.
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('table img').count()).toBe(0);
    // Durability is off here: its card stays hidden, the mesh table lists this node.
    expect(await page.locator('#durability').isVisible()).toBe(false);
    await page.waitForFunction(() => document.querySelectorAll('#mesh tbody tr.self').length === 1, undefined, { timeout: 10_000 });
    expect(await page.evaluate(overflowing)).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-ops-1440.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('shows durability and Redis health when the node runs a durable store (a redis-server of its own, then killed)', async (ctx) => {
    requireRedisServer(ctx);
    const chromium = await launchChromium({ viewport: { width: 1440, height: 900 } });
    if (typeof chromium === 'string') noBrowser(ctx, 'dashboard durability test', chromium);
    cleanup.push(() => chromium.close());
    const redis = await startRedisServer();
    cleanup.push(() => redis.kill());
    const node = await startNode({ port: 0, logger: silentLogger, name: 'durable', durable: { redis: redis.url, prefix: 'mbdash:', topics: [{ pattern: 'hist.>', history: { size: 10 } }], quota: { maxEventBytes: 8 } } });
    cleanup.push(() => node.close());
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', adminToken: TOKEN });
    cleanup.push(() => http.close());
    // Nodes that report Redis's connection state (stats.store.redisUp) show up/down; others 'unknown'.
    const reports = 'redisUp' in node.stats.store;

    const page = chromium.browser.pages()[0] ?? (await chromium.browser.newPage());
    await page.goto(`${http.url}/#token=${TOKEN}`);
    await page.locator('#durability').waitFor({ state: 'visible', timeout: 10_000 });
    await page.waitForFunction((want) => document.getElementById('d-redis')?.textContent === want, reports ? 'up' : 'unknown', { timeout: 10_000 });
    await page.waitForFunction(() => /^redis /.test(document.querySelector('#mesh tbody tr.self td:last-child')?.textContent ?? ''), undefined, { timeout: 10_000 });
    // A durable publish past a store quota shows in the card (SPEC 15.8).
    const pub = await RawClient.connect(node.port);
    cleanup.push(() => pub.close());
    pub.pub('hist.big', 'more than eight bytes', 1);
    await page.waitForFunction(() => document.getElementById('d-full')?.textContent === '1', undefined, { timeout: 10_000 });
    expect((await (await fetch(`${http.url}/v1/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()).durability).toMatchObject({ on: true, redis: reports ? 'up' : 'unknown' });
    expect(await page.evaluate(overflowing)).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-durability.png'), fullPage: true });
    if (reports) {
      await redis.kill();
      await page.waitForFunction(() => document.getElementById('d-redis')?.textContent === 'down', undefined, { timeout: 15_000 });
    }
  });
});
