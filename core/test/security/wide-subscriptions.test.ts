import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';

/**
 * A subscription whose pattern starts with a wildcard (`>`, `*.…`) matches
 * every reserved topic, but another client's inbox never reaches it (SPEC
 * 11.1: dropped at delivery). Routing still visited it: every reply (an
 * `_INBOX` topic, never cached) walked every such subscription of every
 * client, so one connection holding 10,000 `>` (no token needed on an open
 * node) cut the node's request/reply rate from ~31,700/s to ~4,500/s, five
 * such connections to ~490/s. Found by the tenth session's hostile review.
 */

const nodes: MeshNode[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const n of nodes.splice(0)) await n.close();
});

async function client(n: MeshNode): Promise<RawClient> {
  const c = await RawClient.connect(n.port);
  clients.push(c);
  return c;
}

/** The node, `conns` connections holding `held` subscriptions to `>` each (the first returned), and another one subscribed to its own inbox. */
async function setup(held: number, conns = 1): Promise<{ n: MeshNode; wide: RawClient; requester: RawClient }> {
  const n = await startNode({ port: 0, logger: silentLogger });
  nodes.push(n);
  const fill: Uint8Array[] = [];
  for (let sid = 1; sid <= held; sid++) fill.push(encodeFrame({ type: FrameType.SUB, topic: '>', correlation: sid, payload: encodeBody({}) }));
  const subs = Buffer.concat(fill);
  const wides: RawClient[] = [];
  for (let i = 0; i < conns; i++) {
    const w = await client(n);
    w.socket.write(subs);
    await w.flush(60_000);
    wides.push(w);
  }
  const wide = wides[0]!;
  const requester = await client(n);
  requester.sub(`_INBOX.${requester.clientId}.>`, 1);
  await requester.flush();
  return { n, wide, requester };
}

/** CPU µs the node spends routing `count` replies (fresh inbox topics) while 3 other connections hold `held` subscriptions to `>` each. */
async function replyCost(held: number, count: number): Promise<number> {
  const { wide, requester } = await setup(held, 3);
  const prefix = `_INBOX.${requester.clientId}.`;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame({ type: FrameType.PUB, topic: `${prefix}${i}.${i * 7}`, payload: new Uint8Array(4) }));
  const before = process.cpuUsage();
  requester.socket.write(Buffer.concat(frames));
  await requester.flush(120_000);
  const used = process.cpuUsage(before);
  expect(requester.events().filter((g) => g.topic.startsWith(prefix))).toHaveLength(count);
  await wide.flush();
  expect(wide.events().filter((g) => g.topic.startsWith('_INBOX.'))).toEqual([]);
  return used.user + used.system;
}

describe('subscriptions starting with a wildcard and reserved topics', () => {
  it('2,000 replies cost about the same whether 3 other connections hold 10 or 10,000 subscriptions to ">" each (each reply used to visit them all)', async () => {
    const small = await replyCost(10, 2_000);
    const large = await replyCost(10_000, 2_000);
    // A complexity check, not a time limit: O(owner's) per reply gives a ratio near 1; visiting them all gave about 15.
    expect(large / small).toBeLessThan(5);
  }, 120_000);

  it('a wide subscription still gets its own inbox and other topics, never another client\'s inbox', async () => {
    const { n, wide, requester } = await setup(2);
    const own = `_INBOX.${wide.clientId}.7.abc`;
    const other = `_INBOX.${requester.clientId}.1.x`;
    wide.sub('*.*.>', 50);
    await wide.flush();
    requester.pub(own, 'to wide');
    requester.pub(other, 'to requester');
    requester.pub('plain.topic', 'plain');
    await requester.flush();
    await wide.waitFor((g) => g.topic === 'plain.topic');
    await wide.waitFor((g) => g.topic === own);
    await wide.flush();
    expect(wide.events(own)).toHaveLength(1);
    expect(wide.events(other)).toEqual([]);
    expect(requester.events(other)).toHaveLength(1);
    // Unsubscribed: the wide subscriptions no longer deliver anything.
    for (const sid of [1, 2, 50]) wide.send({ type: FrameType.UNSUB, correlation: sid });
    await wide.flush();
    expect(n.table.size).toBe(1);
    requester.pub(own, 'again');
    requester.pub('plain.topic', 'again');
    await requester.flush();
    await wide.flush();
    expect(wide.events(own)).toHaveLength(1);
    expect(wide.events('plain.topic')).toHaveLength(1);
  });
});
