import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A node with its WebSocket gateway and two Node SDK clients over ws://, all
 * in one child process (ws picks its mask/unmask helpers once, when it is
 * loaded, from WS_NO_BUFFER_UTIL and whether `bufferutil` resolves). Payloads
 * on both sides of ws's native thresholds (24/32/48 B) and past one socket
 * read (64 KiB); prints which helper ws chose and what arrived.
 */
const SCRIPT = `
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startNode, silentLogger } from '@meshbus/core';
import { startWsGateway } from '@meshbus/core/ws';
import { connect } from '@meshbus/sdk';
const require = createRequire(join(process.cwd(), 'core', 'package.json'));
const bufferUtil = require(join(dirname(require.resolve('ws')), 'lib', 'buffer-util.js'));
const node = await startNode({ port: 0, host: '127.0.0.1', logger: silentLogger });
const gw = await startWsGateway(node, { port: 0, host: '127.0.0.1' });
const url = 'ws://127.0.0.1:' + gw.port + '/';
const sub = await connect(url, { reconnect: false });
const pub = await connect(url, { reconnect: false });
const sizes = [0, 1, 23, 31, 47, 48, 100, 4096, 70000];
const got = [];
sub.subscribe('m', { callback: (m) => got.push(Buffer.from(m.data)) });
await sub.flush();
const payload = (n, i) => Buffer.alloc(n, (i * 37 + 11) & 0xff).map((b, k) => (b + k) & 0xff);
sizes.forEach((n, i) => pub.publish('m', payload(n, i)));
await pub.flush();
const deadline = Date.now() + 10000;
while (got.length < sizes.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const intact = sizes.map((n, i) => got[i] !== undefined && got[i].equals(payload(n, i)));
await pub.close(); await sub.close(); await gw.close(); await node.close();
console.log(JSON.stringify({ mask: bufferUtil.mask.name, unmask: bufferUtil.unmask.name, received: got.length, intact }));
`;

function run(env: Record<string, string>): Promise<{ mask: string; unmask: string; received: number; intact: boolean[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: root, env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as { mask: string; unmask: string; received: number; intact: boolean[] });
    });
  });
}

const hasBufferUtil = ((): boolean => {
  try {
    createRequire(join(root, 'core', 'package.json')).resolve('bufferutil');
    return true;
  } catch {
    return false;
  }
})();

describe('WebSocket masking helpers (bufferutil, an optional dependency)', () => {
  it("WS_NO_BUFFER_UTIL=1: ws masks and unmasks in JS, and node and Node SDK exchange every payload intact", async () => {
    const r = await run({ WS_NO_BUFFER_UTIL: '1' });
    expect([r.mask, r.unmask]).toEqual(['_mask', '_unmask']);
    expect(r.received).toBe(9);
    expect(r.intact.every(Boolean)).toBe(true);
  });

  // CI (MESHBUS_REQUIRE_NATIVE=1) installs the optional dependency: there it must load, not skip.
  const required = process.env['MESHBUS_REQUIRE_NATIVE'] === '1';
  it.runIf(hasBufferUtil || required)('bufferutil installed: ws uses it, and the same payloads arrive intact', async () => {
    expect(hasBufferUtil, 'bufferutil (optional dependency) does not load: npm install skipped it or its prebuilt binary').toBe(true);
    const r = await run({ WS_NO_BUFFER_UTIL: '' });
    expect(r.mask).not.toBe('_mask');
    expect(r.unmask).not.toBe('_unmask');
    expect(r.received).toBe(9);
    expect(r.intact.every(Boolean)).toBe(true);
  });
});
