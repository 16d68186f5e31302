import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { signHs256 } from '@meshbus/core';
import { startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

// A peer's back-to-back forwarded events go to local receivers as runs (core publish-run.ts), and a
// run may span topics one subscription alone receives. A receiver whose token denies some of them
// under an allowed wildcard must get exactly the allowed ones, as one delivery per event gives.

const JWT = 'eleventh-session-secret';
const nodes: TestNode[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});
const pub = (topic: string, data: string): FrameSpec => ({ type: FrameType.PUB, topic, payload: Buffer.from(data) });

describe('events from a peer, in runs across topics', () => {
  it("a receiver whose token's subscribe deny covers some of them gets only the others", async () => {
    const a = await startMeshNode({}, 'a', { jwt: { hs256Secret: JWT } });
    nodes.push(a);
    const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b', { jwt: { hs256Secret: JWT } });
    nodes.push(b);
    const token = (p?: object): string => signHs256({ sub: 'x', ...(p ? { permissions: p } : {}) }, JWT);
    const r = await RawClient.connect(b.node.port, { token: token({ subscribe: { allow: ['orders.>'], deny: ['orders.internal'] } }) });
    raws.push(r);
    const p = await RawClient.connect(a.node.port, { token: token() });
    raws.push(p);
    r.sub('orders.>', 1);
    await r.flush();
    // The interest has reached the publisher's node once a probe arrives.
    await until(async () => {
      p.pub('orders.probe', 'p');
      await p.flush();
      return r.events('orders.probe').length > 0;
    });
    p.sendBytes(Buffer.concat([pub('orders.eu', '1'), pub('orders.internal', '2'), pub('orders.us', '3'), pub('orders.internal', '4'), pub('orders.eu', '5'), pub('orders.end', 'end')].map((s) => encodeFrame(s))));
    await r.waitFor((g) => g.type === FrameType.PUB && g.topic === 'orders.end');
    const got = r.events().filter((g) => g.topic !== 'orders.probe');
    expect(got.map((g) => `${g.topic}:${g.payload.toString()}`)).toEqual(['orders.eu:1', 'orders.us:3', 'orders.eu:5', 'orders.end:end']);
  }, 30_000);
});
