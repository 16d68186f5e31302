import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient, RawWs, type RawFrames } from '@meshbus/testkit';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

/**
 * The permission decisions a JWT client's connection remembers
 * (auth/permissions.ts FrameDecisions) are bounded in bytes, not only in
 * entries: the publish check runs before the topic length check, so a client
 * can send topics far over maxTopicLength (up to 64 KiB, as long as the
 * frame fits maxFrameLength) and have them refused with a non-fatal
 * MB_ERR_BAD_TOPIC. The node must not keep a copy of each.
 */

const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));

/** A node in a child process answering each line on stdin with its memory after a full GC. */
async function nodeProcess(opts: Record<string, unknown>): Promise<{ child: ChildProcessWithoutNullStreams; port: number; wsPort: number; arrayBuffers(): Promise<number> }> {
  const code = `
    import { startNode, silentLogger } from '@meshbus/core';
    import { WsGateway } from '@meshbus/core/ws';
    import { createInterface } from 'node:readline';
    const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    console.log(JSON.stringify({ port: n.port, wsPort: g.port }));
    createInterface({ input: process.stdin }).on('line', () => {
      globalThis.gc(); globalThis.gc();
      console.log(JSON.stringify(process.memoryUsage().arrayBuffers));
    });
    process.stdin.on('end', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: CORE_DIR, stdio: 'pipe' });
  child.stderr.resume();
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error('node process exited');
    return r.value;
  };
  const { port, wsPort } = JSON.parse(await next()) as { port: number; wsPort: number };
  return {
    child,
    port,
    wsPort,
    async arrayBuffers() {
      child.stdin.write('mem\n');
      return JSON.parse(await next()) as number;
    },
  };
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe.each(['tcp', 'ws'] as const)('%s: remembered permission decisions', (kind) => {
  it('keep no copy of a topic over the length limit: 64 distinct 32 KiB topics leave the node\'s memory as it was', async () => {
    const node = await nodeProcess({ jwt: { hs256Secret: SECRET } });
    cleanup.push(() => node.child.kill());
    const hello = { token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['orders.>'] } } }) };
    const c: RawFrames = kind === 'tcp' ? await RawClient.connect(node.port, hello) : await RawWs.connect(`ws://127.0.0.1:${node.wsPort}/`, { hello });
    cleanup.push(() => (c instanceof RawClient ? c.close() : (c as RawWs).ws.terminate()));
    await c.flush();
    const before = await node.arrayBuffers();
    const long = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 64; i++) c.pub(`orders.${String(i).padStart(2, '0')}.${long}`, 'p', i + 1);
    await c.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 64);
    // Every one refused (too long), the connection still open.
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(Array(64).fill('MB_ERR_BAD_TOPIC'));
    await c.flush();
    const after = await node.arrayBuffers();
    // 64 kept copies would be 2 MiB; the bound is 64 entries of at most DEFAULT_MAX_TOPIC (256) bytes each.
    expect(after - before).toBeLessThan(512 * 1024);
  });
});
