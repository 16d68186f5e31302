import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, silentLogger, startNode, type MeshNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { ClusterNode } from '@meshbus/cluster';
import { until, cleanups } from '@meshbus/testkit';
import { connect, type Client, type Msg } from '../src/index.js';
import { bundle, SDK_ROOT } from './bundles.js';
import { hostileWsNode, welcomeWithExtra } from './helpers.js';
import { browserPages, ESM_HARNESS } from './browser-pages.js';

/** The README's browser example, exactly as printed there. */
const README_EXAMPLE = (() => {
  const md = readFileSync(join(SDK_ROOT, 'README.md'), 'utf8');
  const m = /<!-- browser-example[^>]*-->\n```html\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('sdk/README.md has no browser-example block');
  return m[1]!;
})();

type Ctx = { skip(note?: string): never };
type Page = import('playwright-core').Page;

/**
 * Chromium resolves `localhost:8481` (the README's URL) to this port through
 * --host-resolver-rules, so the example runs unchanged while the test's node
 * listens on a free port.
 */
let gatewayPort = 0;

const pages = browserPages(
  {
    '/meshbus.iife.js': () => bundle('meshbus.iife.js'),
    '/meshbus.esm.js': () => bundle('meshbus.esm.js'),
    '/example.html': () => `<!doctype html><html><head><meta charset="utf-8"><title>example</title></head><body>\n${README_EXAMPLE}</body></html>`,
    '/esm.html': () => ESM_HARNESS,
  },
  async () => {
    gatewayPort = await freePort();
    return [`--host-resolver-rules=MAP localhost:8481 127.0.0.1:${gatewayPort}`];
  },
);

const cleanup = cleanups();

async function openPage(ctx: Ctx, path: string): Promise<{ page: Page; problems: string[]; logs: string[] }> {
  const page = await pages.need(ctx).newPage();
  cleanup.push(() => page.close());
  const problems: string[] = [];
  const logs: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(`${pages.origin}${path}`);
  return { page, problems, logs };
}

/** A node with its WebSocket gateway on the port Chromium maps localhost:8481 to; only the test page's origin is allowed. */
async function wsNode(node?: MeshNode): Promise<{ node: MeshNode; gw: WsGateway }> {
  const n = node ?? (await startNode({ port: 0, logger: silentLogger, pingInterval: 1000 }));
  const gw = await new WsGateway(n, { port: gatewayPort, host: '127.0.0.1', origins: [pages.origin] }).listen();
  return { node: n, gw };
}

async function tcpClient(node: MeshNode): Promise<Client> {
  const c = await connect(`127.0.0.1:${node.port}`, { name: 'node-tcp' });
  cleanup.push(() => c.close());
  return c;
}

function collect(c: Client, pattern: string): string[] {
  const got: string[] = [];
  c.subscribe(pattern, { callback: (m: Msg) => got.push(`${m.topic}=${m.string()}`) });
  return got;
}

describe('browser SDK in headless chromium', () => {
  it('the README example works as written (script-tag build) and talks to a Node TCP client', async (ctx) => {
    pages.need(ctx);
    const { node, gw } = await wsNode();
    cleanup.push(() => node.close());
    cleanup.push(() => gw.close());
    const tcp = await tcpClient(node);
    const fromBrowser = collect(tcp, 'chat.>');
    await tcp.flush();
    const { page, problems, logs } = await openPage(ctx, '/example.html');
    expect(await page.content()).toContain(README_EXAMPLE.trim().split('\n')[2]!.trim());
    await until(() => fromBrowser.length === 1, 'the example publish at the TCP client', 10_000);
    expect(fromBrowser).toEqual(['chat.hello=hi from the browser']);
    tcp.publish('chat.node', 'hello browser');
    await page.waitForFunction(() => document.body.textContent!.includes('chat.node: hello browser'), undefined, { timeout: 10_000 });
    const text = await page.evaluate(() => document.body.textContent);
    expect(text).toContain('chat.hello: hi from the browser');
    expect(logs.filter((l) => l.startsWith('meshbus '))).toEqual([]); // status changes after connect: none yet
    expect([...node.connections()].map((s) => s.transport.kind).sort()).toEqual(['tcp', 'ws']);
    expect(problems).toEqual([]);
  });

  it('ESM bundle: subscribes and publishes, survives a node restart (reconnect + resubscribe), exchanges with TCP both ways', async (ctx) => {
    pages.need(ctx);
    let { node, gw } = await wsNode();
    cleanup.push(() => node.close());
    cleanup.push(() => gw.close());
    const { page, problems } = await openPage(ctx, '/esm.html');
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    await page.evaluate(async () => {
      const w = window as unknown as Record<string, any>;
      w.got = [];
      w.statuses = [];
      const nc = await w.meshbus.connect('ws://localhost:8481', { name: 'esm-page', reconnectBackoff: { base: 50, max: 300 } });
      nc.on('status', (s: { type: string; reconnected?: boolean }) => w.statuses.push(s.type + (s.reconnected ? ':re' : '')));
      nc.subscribe('to.browser.*', { callback: (m: { topic: string; string(): string }) => w.got.push(`${m.topic}=${m.string()}`) });
      await nc.flush();
      w.nc = nc;
    });
    const got = (): Promise<string[]> => page.evaluate(() => (window as unknown as { got: string[] }).got);

    let tcp = await tcpClient(node);
    let fromBrowser = collect(tcp, 'to.node.>');
    await tcp.flush();
    tcp.publish('to.browser.1', 'before restart');
    await page.evaluate(() => (window as unknown as { nc: Client }).nc.publish('to.node.1', 'from page'));
    await until(() => fromBrowser.length === 1, 'page → tcp', 10_000);
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 1);

    // Restart: the node goes away (abruptly) and comes back on the same port.
    await tcp.close();
    await gw.close();
    await node.close();
    ({ node, gw } = await wsNode(await startNode({ port: 0, logger: silentLogger, pingInterval: 1000 })));
    cleanup.push(() => node.close());
    cleanup.push(() => gw.close());
    await page.waitForFunction(() => (window as unknown as { statuses: string[] }).statuses.includes('connected:re'), undefined, { timeout: 15_000 });
    await page.evaluate(() => (window as unknown as { nc: Client }).nc.flush());
    tcp = await tcpClient(node);
    fromBrowser = collect(tcp, 'to.node.>');
    await tcp.flush();
    tcp.publish('to.browser.2', 'after restart');
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 2, undefined, { timeout: 10_000 });
    expect(await got()).toEqual(['to.browser.1=before restart', 'to.browser.2=after restart']);
    await page.evaluate(() => (window as unknown as { nc: Client }).nc.publish('to.node.2', 'from page again'));
    await until(() => fromBrowser.length === 1, 'page → tcp after restart', 10_000);
    expect(fromBrowser).toEqual(['to.node.2=from page again']);
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    expect(statuses).toContain('disconnected');
    expect(statuses).toContain('reconnecting');
    expect(problems).toEqual([]);
    await page.evaluate(() => (window as unknown as { nc: Client }).nc.close());
  });

  it('across two nodes of a mesh: the browser on node A, a TCP client on node B, both ways', async (ctx) => {
    pages.need(ctx);
    const a = await startNode({ port: 0, logger: silentLogger, name: 'a' });
    const b = await startNode({ port: 0, logger: silentLogger, name: 'b' });
    cleanup.push(() => a.close());
    cleanup.push(() => b.close());
    const ca = await new ClusterNode(a, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500 }).start();
    cleanup.push(() => ca.stop());
    const cb = await new ClusterNode(b, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, seeds: [`127.0.0.1:${ca.port}`] }).start();
    cleanup.push(() => cb.stop());
    await until(() => ca.link(b.id)?.state === 'up' && cb.link(a.id)?.state === 'up', 'mesh up', 10_000);
    const { gw } = await wsNode(a);
    cleanup.push(() => gw.close());

    const tcpB = await tcpClient(b);
    const fromBrowser = collect(tcpB, 'up.>');
    await tcpB.flush();
    const { page, problems } = await openPage(ctx, '/esm.html');
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    await page.evaluate(async () => {
      const w = window as unknown as Record<string, any>;
      w.got = [];
      const nc = await w.meshbus.connect('ws://localhost:8481');
      nc.subscribe('down.>', { callback: (m: { topic: string; string(): string }) => w.got.push(`${m.topic}=${m.string()}`) });
      await nc.flush();
      w.nc = nc;
    });
    // Interest from the browser's node reaches B before B publishes.
    await until(() => {
      let n = 0;
      b.table.forEach((s) => {
        if (s.owner.kind === 'peer' && s.pattern === 'down.>') n++;
      });
      return n === 1;
    }, 'interest at B', 10_000);
    await until(() => {
      let n = 0;
      a.table.forEach((s) => {
        if (s.owner.kind === 'peer' && s.pattern === 'up.>') n++;
      });
      return n === 1;
    }, 'interest at A', 10_000);
    for (let i = 0; i < 20; i++) tcpB.publish(`down.${i}`, `b${i}`);
    await page.evaluate(() => {
      const nc = (window as unknown as { nc: Client }).nc;
      for (let i = 0; i < 20; i++) nc.publish(`up.${i}`, `w${i}`);
    });
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 20, undefined, { timeout: 10_000 });
    await until(() => fromBrowser.length === 20, 'browser → B', 10_000);
    expect(await page.evaluate(() => (window as unknown as { got: string[] }).got)).toEqual(Array.from({ length: 20 }, (_, i) => `down.${i}=b${i}`));
    expect(fromBrowser).toEqual(Array.from({ length: 20 }, (_, i) => `up.${i}=w${i}`));
    // A request from the browser answered by the TCP client on the other node.
    tcpB.subscribe('svc.upper', { callback: (m: Msg) => m.respond(m.string().toUpperCase()) });
    await tcpB.flush();
    await until(() => {
      let n = 0;
      a.table.forEach((s) => {
        if (s.owner.kind === 'peer' && s.pattern === 'svc.upper') n++;
      });
      return n === 1;
    }, 'responder interest at A', 10_000);
    const reply = await page.evaluate(async () => (await (window as unknown as { nc: Client }).nc.request('svc.upper', 'mesh', { timeout: 5000 })).string());
    expect(reply).toBe('MESH');
    expect(problems).toEqual([]);
    await page.evaluate(() => (window as unknown as { nc: Client }).nc.close());
  });

  it('the send buffer is bounded in the browser too: past maxPendingBytes a publish throws MB_ERR_SEND_BUFFER_FULL, whenWritable() waits for room', async (ctx) => {
    pages.need(ctx);
    const { node, gw } = await wsNode();
    cleanup.push(() => node.close());
    cleanup.push(() => gw.close());
    const tcp = await tcpClient(node);
    const got = collect(tcp, 'big.>');
    await tcp.flush();
    const { page, problems } = await openPage(ctx, '/esm.html');
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const seen = await page.evaluate(async () => {
      const w = window as unknown as Record<string, any>;
      const nc = await w.meshbus.connect('ws://localhost:8481', { maxPendingBytes: 64 * 1024 });
      const big = 'x'.repeat(200_000);
      const codeOf = (fn: () => void): string => {
        try {
          fn();
          return 'sent';
        } catch (e) {
          return (e as { code?: string }).code ?? String(e);
        }
      };
      // The first goes (nothing waits); the second finds 200 KB unsent in the same tick.
      const first = codeOf(() => nc.publish('big.1', big));
      const second = codeOf(() => nc.publish('big.2', big));
      const pending = nc.pendingBytes;
      await nc.whenWritable(0);
      const third = codeOf(() => nc.publish('big.3', big));
      await nc.flush();
      await nc.close();
      return { first, second, pending, third };
    });
    // Before: 'sent' for all three, whatever was unsent.
    expect(seen).toMatchObject({ first: 'sent', second: 'MB_ERR_SEND_BUFFER_FULL', third: 'sent' });
    expect(seen.pending).toBeGreaterThanOrEqual(200_000);
    await until(() => got.length === 2, 'the two events sent, at the TCP client', 10_000);
    expect(got.map((g) => g.slice(0, 6))).toEqual(['big.1=', 'big.3=']);
    expect(problems).toEqual([]);
  });

  it('the gateway refuses a page from an origin outside the allow-list', async (ctx) => {
    pages.need(ctx);
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => n.close());
    const gw = await new WsGateway(n, { port: gatewayPort, host: '127.0.0.1', origins: ['https://only.example.com'] }).listen();
    cleanup.push(() => gw.close());
    const { page } = await openPage(ctx, '/esm.html');
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const err = await page.evaluate(async () => {
      try {
        await (window as unknown as { meshbus: { connect(u: string, o: object): Promise<Client> } }).meshbus.connect('ws://localhost:8481', { connectTimeout: 2000 });
        return 'connected';
      } catch (e) {
        return (e as { code?: string }).code ?? String(e);
      }
    });
    expect(err).toBe('MB_ERR_CONNECT_FAILED');
    expect(n.stats.connectionsRefused).toBeGreaterThanOrEqual(1);
  });

  it('a hostile node\'s WELCOME of 3.5 million empty maps (an unknown key) is refused as it is decoded, at the cost of a plain one (thirteenth session)', async (ctx) => {
    pages.need(ctx);
    const { page, problems } = await openPage(ctx, '/esm.html');
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    /** One connection attempt from the page: how it ended, and the page's wall time for it (its main thread decodes). */
    const attempt = async (body: Uint8Array): Promise<{ ms: number; outcome: string }> => {
      const hostile = await hostileWsNode(body);
      cleanup.push(() => hostile.close());
      return page.evaluate(async (url) => {
        const w = window as unknown as Record<string, any>;
        const t0 = performance.now();
        const outcome = await w.meshbus.connect(url, { maxReconnectAttempts: 0 }).then(
          async (c: { close(): Promise<void> }) => (await c.close(), 'connected'),
          (e: { code?: string; cause?: { code?: string; message?: string } }) => `${e.code} ${e.cause?.code ?? ''} ${e.cause?.message ?? ''}`,
        );
        return { ms: performance.now() - t0, outcome: outcome as string };
      }, `ws://127.0.0.1:${hostile.port}`);
    };
    const n = 3_500_000;
    const bombs: number[] = [];
    const plains: number[] = [];
    // The cheapest of 3 each: a ratio, not a speed (before: the bomb connected after >1 s of the tab's main thread).
    for (let i = 0; i < 3; i++) {
      const bomb = await attempt(welcomeWithExtra(n, 'empty maps'));
      const plain = await attempt(welcomeWithExtra(n, 'string'));
      console.log(`chromium, ESM bundle, one attempt: ${n} empty maps ${bomb.ms.toFixed(1)} ms (${bomb.outcome}), a string of as many bytes ${plain.ms.toFixed(1)} ms`);
      expect(bomb.outcome).toMatch(/^MB_ERR_CONNECT_FAILED MB_ERR_BAD_BODY .*maps and arrays/);
      expect(plain.outcome).toBe('connected');
      bombs.push(bomb.ms);
      plains.push(plain.ms);
    }
    expect(Math.min(...bombs) / Math.min(...plains)).toBeLessThan(3);
    expect(problems).toEqual([]);
  });
});
