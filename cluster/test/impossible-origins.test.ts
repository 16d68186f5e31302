/**
 * Origins a link can never carry (origin-rules.ts), from the twenty-fourth
 * session's hostile review of leaf nodes and gateways. A node holding the
 * cluster secret could stamp one event with another node's origin and a
 * sequence 55 minutes ahead: filed under that origin's per-publisher order,
 * it made the mesh drop the real node's next events as old (0 of 10). The
 * same through a leaf that took a mesh node's id (then relayed to the whole
 * mesh), over a gateway with an origin of this region, and over a peer link
 * with another directly linked peer's origin; a gateway echo was delivered
 * twice. Each case fails on the code before.
 */
import { describe, expect, it } from 'vitest';
import type { Frame } from '@meshbus/proto';
import { FrameType } from '@meshbus/proto';
import { freePort, until } from '@meshbus/testkit';
import type { PeerLink } from '../src/peer-link.js';
import { collect, meshKit, rawPeer, type TestNode } from './mesh-helpers.js';

const SECRET = 'origin-rules-secret';
const { node, cli } = meshKit();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const AHEAD = 55 * 60 * 1e6; // µs: within what a node's order remembers (an hour)
const owners = (t: TestNode, kind: string): number => {
  let n = 0;
  t.node.table.forEach((s) => void (s.owner.kind === kind && n++));
  return n;
};

/** Publishes 10 events on `topic` from `t` and waits for them at `got` (all, or as many as came in 1.5 s). */
async function tenFrom(t: TestNode, topic: string, got: string[]): Promise<number> {
  const pub = await cli(t);
  for (let i = 0; i < 10; i++) pub.publish(topic, `real-${i}`);
  await pub.flush();
  const real = (): number => got.filter((g) => g.startsWith('real-')).length;
  await until(() => real() >= 10, 'real events', 1500).catch(() => {});
  return real();
}

describe('origins a link can never carry are dropped', () => {
  it('a leaf that says it is a node of the mesh is refused (MB_ERR_BAD_PEER_INFO); that node\'s events still flow', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const p = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'p');
    const q = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'q');
    await until(() => [hub, p, q].every((a) => [hub, p, q].every((b) => a === b || a.cluster.link(b.node.id)?.state === 'up')), 'mesh');
    const gotH = collect(await cli(hub), 'z');
    const gotQ = collect(await cli(q), 'z');
    await until(() => owners(p, 'peer') >= 2, 'interest at p');
    const evil = await rawPeer(hub.cluster.port, { id: p.node.id, name: 'evil', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true } as never, SECRET);
    const refused = await evil.waitFor((g) => g.type === FrameType.ERROR, 5000);
    expect(refused.error).toBe('MB_ERR_BAD_PEER_INFO');
    evil.send({ type: FrameType.PUB, topic: 'z', payload: Buffer.from('forged'), origin: Buffer.from(p.node.id, 'hex'), seq: Date.now() * 1000 + AHEAD, maxHops: 8 });
    await sleep(200);
    evil.close();
    expect(await tenFrom(p, 'z', gotH)).toBe(10);
    await until(() => gotQ.filter((g) => g.startsWith('real-')).length === 10, 'at q');
    expect([...gotH, ...gotQ]).not.toContain('forged');
    expect(hub.cluster.reorderedDropped + q.cluster.reorderedDropped).toBe(0);
  });

  it('a peer link carrying another directly linked peer\'s origin is dropped', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const p = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'p');
    await until(() => hub.cluster.link(p.node.id)?.state === 'up' && p.cluster.link(hub.node.id)?.state === 'up', 'mesh');
    const got = collect(await cli(hub), 'z');
    await until(() => owners(p, 'peer') >= 1, 'interest at p');
    const evilId = '00000000000000f1';
    const evil = await rawPeer(hub.cluster.port, { id: evilId, name: 'evil', cluster: '127.0.0.1:1', client: '127.0.0.1:1', mesh: 'full' } as never, SECRET);
    await until(() => hub.cluster.link(evilId)?.state === 'up', 'evil peer up');
    evil.send({ type: FrameType.PUB, topic: 'z', payload: Buffer.from('forged'), origin: Buffer.from(p.node.id, 'hex'), seq: Date.now() * 1000 + AHEAD, maxHops: 8 });
    // The hub's own origin: an echo.
    evil.send({ type: FrameType.PUB, topic: 'z', payload: Buffer.from('forged'), origin: Buffer.from(hub.node.id, 'hex'), seq: Date.now() * 1000 + AHEAD, maxHops: 8 });
    await until(() => hub.cluster.badPeerEvents === 2, 'both dropped');
    evil.close();
    expect(await tenFrom(p, 'z', got)).toBe(10);
    expect(got).not.toContain('forged');
  });

  it('a gateway carrying an origin of this region is dropped: an echoed event is not delivered twice', async () => {
    const [pe, pu] = [await freePort(), await freePort()];
    const eu0 = await node({ secret: SECRET, port: pe, region: 'eu', gateways: { us: [`127.0.0.1:${pu}`] } }, 'eu-0');
    const eu1 = await node({ secret: SECRET, region: 'eu', seeds: [eu0.peerAddr], gateways: { us: [`127.0.0.1:${pu}`] } }, 'eu-1');
    const us = await node({ secret: SECRET, port: pu, region: 'us', gateways: { eu: [`127.0.0.1:${pe}`] } }, 'us-0');
    const gw = (t: TestNode): number => t.cluster.peers().filter((x) => x.gateway !== undefined && x.state === 'up').length;
    await until(() => gw(eu0) === 2 && gw(us) >= 1 && eu0.cluster.link(eu1.node.id)?.state === 'up', 'links');
    collect(await cli(us), 'e');
    const got = collect(await cli(eu0), 'e');
    await until(() => owners(eu0, 'gateway') > 0 && owners(eu1, 'gateway') > 0 && owners(eu1, 'peer') > 0, 'interest');
    // A buggy us node echoes every event it takes in over a gateway back to eu over its own gateway link.
    const uc = us.cluster as unknown as { peerEvent(l: PeerLink, f: Frame): void };
    const take = uc.peerEvent.bind(uc);
    let echoed = 0;
    uc.peerEvent = (l, f) => {
      const out = [...(us.cluster as unknown as { allLinks: Set<PeerLink> }).allLinks].find((x) => x.kind === 'gateway' && x.role === 'dialer' && x.state === 'up');
      if (l.kind === 'gateway' && out !== undefined) {
        out.sendRaw(Buffer.from(f.buf.subarray(f.start, f.end)));
        echoed++;
      }
      take(l, f);
    };
    expect(await tenFrom(eu1, 'e', got)).toBe(10);
    await until(() => echoed >= 10, 'echoed');
    await sleep(300);
    expect(got.length).toBe(10);
    expect(eu0.cluster.badPeerEvents).toBeGreaterThan(0);
  }, 30_000);
});
