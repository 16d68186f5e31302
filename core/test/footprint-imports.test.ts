import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packagesIn, RECORD_IMPORTS_HOOK, testRedis } from '@meshbus/testkit';

// Issue #15: the router stands alone. Importing @meshbus/core or starting a
// node without Redis must not load the durability dependencies (ioredis,
// bullmq), the HTTP API's (fastify) nor the WebSocket gateway's (ws); they
// load only where they are used.
// Each case runs in a fresh Node process (the test's own process has loaded
// everything) with a loader hook that records every resolved module.

const CORE = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mb-imports-'));
let runs = 0;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A script line that splits the record: packagesLoadedBy's later sets hold what loaded after it. */
const MARK = `(await import('node:fs')).appendFileSync(process.env.MB_IMPORT_LOG, 'MARK\\n');`;

/** Runs `script` (an ES module body) in a fresh node with cwd core/; resolves with the packages it loaded (all of them). */
async function packagesLoadedBy(script: string): Promise<Set<string>> {
  const parts = await packagesLoadedInParts(script);
  return new Set(parts.flatMap((p) => [...p]));
}

/** The same, split at each MARK line the script wrote: one set per part, in order. */
function packagesLoadedInParts(script: string): Promise<Set<string>[]> {
  const log = join(dir, `run-${++runs}.log`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', RECORD_IMPORTS_HOOK, '--input-type=module', '-e', script], {
      cwd: CORE,
      env: { ...process.env, MB_IMPORT_LOG: log },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`exit ${code}: ${err}`));
      let text = '';
      try {
        text = readFileSync(log, 'utf8');
      } catch {
        // nothing resolved at all
      }
      const parts: string[][] = [[]];
      for (const line of text.split('\n')) {
        if (line === 'MARK') parts.push([]);
        else parts[parts.length - 1]!.push(line);
      }
      resolve(parts.map((urls) => packagesIn(urls)));
    });
  });
}

const HEAVY = ['ioredis', 'bullmq'];

describe('what a plain node loads', () => {
  it('importing @meshbus/core loads neither the durability, the HTTP nor the WebSocket dependencies', async () => {
    const pkgs = await packagesLoadedBy(`await import('@meshbus/core');`);
    expect(pkgs.has('msgpackr')).toBe(true); // the hook sees packages at all
    // prom-client (/metrics) and pino (fastify's logger) load with the HTTP plugin: 40 and 20 ms of start-up otherwise.
    for (const p of [...HEAVY, 'fastify', 'ws', 'prom-client', 'pino']) expect(pkgs.has(p), p).toBe(false);
  });

  it('a node started without redis never loads ioredis or bullmq, also after a client published', async () => {
    const pkgs = await packagesLoadedBy(`
      import { connect } from 'node:net';
      const { startNode, silentLogger } = await import('@meshbus/core');
      const n = await startNode({ port: 0, logger: silentLogger });
      await new Promise((r) => { const s = connect(n.port, '127.0.0.1', () => { s.destroy(); r(); }); });
      n.publishLocal('a.b', new Uint8Array(1));
      await n.close();
    `);
    expect(pkgs.has('msgpackr')).toBe(true);
    for (const p of [...HEAVY, 'ws']) expect(pkgs.has(p), p).toBe(false);
  });

  it('the WebSocket gateway loads ws on its first upgrade, not when imported or listening, and serves a node', async () => {
    const [plain, listening, upgraded] = await packagesLoadedInParts(`
      const { startNode, silentLogger } = await import('@meshbus/core');
      ${MARK}
      const { WsGateway } = await import('@meshbus/core/ws');
      const n = await startNode({ port: 0, logger: silentLogger });
      const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
      ${MARK}
      // A WebSocket handshake by hand (the test process must not load ws itself): 101, then close.
      const { connect } = await import('node:net');
      const head = await new Promise((resolve, reject) => {
        const s = connect(g.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
        s.once('data', (d) => { s.destroy(); resolve(d.toString()); });
        s.once('error', reject);
      });
      if (!head.startsWith('HTTP/1.1 101')) throw new Error('no upgrade: ' + head);
      await g.close();
      await n.close();
    `);
    expect(plain!.has('ws')).toBe(false);
    expect(listening!.has('ws')).toBe(false);
    expect(upgraded!.has('ws')).toBe(true);
    for (const p of HEAVY) expect(plain!.has(p) || listening!.has(p) || upgraded!.has(p), p).toBe(false);
  });

  it('the HTTP API subpath loads fastify and prom-client only when startHttp runs, and never durability', async () => {
    const [imported, started] = await packagesLoadedInParts(`
      const { startNode, silentLogger } = await import('@meshbus/core');
      const { startHttp } = await import('@meshbus/core/http');
      ${MARK}
      const n = await startNode({ port: 0, logger: silentLogger });
      const h = await startHttp(n, { port: 0, host: '127.0.0.1' });
      const r = await fetch(h.url + '/healthz');
      if (r.status !== 200) throw new Error('healthz ' + r.status);
      await h.close();
      await n.close();
    `);
    expect(imported!.has('fastify')).toBe(false);
    expect(started!.has('fastify')).toBe(true);
    expect(imported!.has('prom-client')).toBe(false);
    expect(started!.has('prom-client')).toBe(true);
    for (const p of HEAVY) expect(imported!.has(p) || started!.has(p), p).toBe(false);
  });

  it('a node with redis configured loads ioredis and bullmq', async (ctx) => {
    const r = await testRedis(ctx);
    try {
      const durable = JSON.stringify({ redis: r.url, prefix: r.prefix, topics: [{ pattern: 'd.>', history: { size: 10 } }] });
      const pkgs = await packagesLoadedBy(`
        const { startNode, silentLogger } = await import('@meshbus/core');
        const n = await startNode({ port: 0, logger: silentLogger, durable: ${durable} });
        if (!n.durability) throw new Error('no durability');
        await n.close();
      `);
      for (const p of HEAVY) expect(pkgs.has(p), p).toBe(true);
    } finally {
      await r.cleanup();
    }
  });
});
