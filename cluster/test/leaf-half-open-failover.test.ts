// A leaf fails over from hub C to hub A while C still holds its old link half-open (twenty-fourth session review of
// origin-rules.ts): C dropped the leaf's events relayed by A as an "impossible origin" (its own leaf) until the old link
// was found stale, 4-6 s at the default ping interval. Fails on the rule as first written.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { collect, meshKit, type TestNode } from './mesh-helpers.js';

const SECRET = 'review-secret-123';
const { node, cli } = meshKit();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const owners = (t: TestNode, kind: string): number => { let n = 0; t.node.table.forEach((s) => void (s.owner.kind === kind && n++)); return n; };

/** Proxy: `open` decides whether new dials are forwarded; `sever()` kills the client sides only, keeping upstreams open and silent (half-open at the target). */
async function proxy(target: number) {
  let open = true;
  const pairs: Array<[net.Socket, net.Socket]> = [];
  const keep: net.Socket[] = [];
  const server = net.createServer((s) => {
    if (!open) return void s.destroy();
    const up = net.connect(target, '127.0.0.1');
    s.pipe(up); up.pipe(s);
    pairs.push([s, up]);
    s.on('error', () => {}); up.on('error', () => {});
    s.on('close', () => { if (!keep.includes(up)) up.destroy(); });
    up.on('close', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    addr: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    setOpen: (v: boolean) => { open = v; },
    sever: () => { for (const [s, up] of pairs) { keep.push(up); up.unpipe(s); s.unpipe(up); up.pause(); s.destroy(); } },
    close: () => { for (const [s, up] of pairs) { s.destroy(); up.destroy(); } server.close(); },
  };
}

describe('hub failover of a leaf', () => {
  it('events of a leaf that moved to another hub reach the old hub\'s clients', async () => {
    const c = await node({ secret: SECRET }, 'c');
    const a = await node({ secret: SECRET, seeds: [c.peerAddr] }, 'a');
    await until(() => c.cluster.link(a.node.id)?.state === 'up' && a.cluster.link(c.node.id)?.state === 'up', 'mesh');
    const pc = await proxy(Number(c.peerAddr.split(':')[1]));
    const pa = await proxy(Number(a.peerAddr.split(':')[1]));
    pa.setOpen(false);
    const leaf = await node({ secret: SECRET, mode: 'leaf', seeds: [pc.addr, pa.addr] }, 'leaf');
    await until(() => leaf.cluster.link(c.node.id)?.state === 'up', 'leaf on c');
    const gotC = collect(await cli(c), 'z');
    const gotA = collect(await cli(a), 'z');
    await until(() => owners(leaf, 'peer') >= 1, 'interest at leaf');
    const lc = await cli(leaf);
    lc.publish('z', 'before'); await lc.flush();
    await until(() => gotC.includes('before') && gotA.includes('before'), 'baseline');
    // The leaf's side of its link to c dies; c does not hear of it (half-open). c refuses new dials; a takes them.
    pc.setOpen(false); pa.setOpen(true);
    
    pc.sever();
    await until(() => leaf.cluster.link(a.node.id)?.state === 'up', 'leaf on a', 10_000);
    await until(() => owners(a, 'leaf') >= 0 && owners(leaf, 'peer') >= 1, 'x');
    await sleep(100);
    for (let i = 0; i < 10; i++) lc.publish('z', `real-${i}`);
    await lc.flush();
    await sleep(1500);
    const r = (g: string[]) => g.filter((x) => x.startsWith('real-')).length;
    pc.close(); pa.close();
    expect(r(gotC)).toBe(10);
  }, 40_000);
});
