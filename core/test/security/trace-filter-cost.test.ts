import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Flags, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';

/**
 * A connection with a subscription starting with a wildcard (`>`) has its
 * deliveries filtered: another client's inbox and trace records it did not
 * subscribe to by name are dropped (SPEC 11.1). The filter walked the
 * connection's `_TRACE.<id>` patterns for every hop record, and any client
 * may hold up to maxSubscriptions of them: with `>` and 9,999 such
 * subscriptions each traced PUB (a ~50-byte frame) cost the node ~7.5 ms of
 * CPU, 30 times a plain one (2,000 PUBs in one write: 15 s). Found by the
 * tenth session's hostile review.
 */

const nodes: MeshNode[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const n of nodes.splice(0)) await n.close();
});

const id = (): string => randomBytes(8).toString('hex');

/** The client and node, the client holding `>` and `held` subscriptions to trace ids of its own (plus `watched`). */
async function setup(held: number, watched?: string): Promise<{ n: MeshNode; c: RawClient }> {
  const n = await startNode({ port: 0, logger: silentLogger });
  nodes.push(n);
  const c = await RawClient.connect(n.port);
  clients.push(c);
  const fill: Uint8Array[] = [encodeFrame({ type: FrameType.SUB, topic: '>', correlation: 1, payload: encodeBody({}) })];
  if (watched !== undefined) fill.push(encodeFrame({ type: FrameType.SUB, topic: `_TRACE.${watched}`, correlation: 2, payload: encodeBody({}) }));
  for (let sid = 3; sid < held + 3; sid++) fill.push(encodeFrame({ type: FrameType.SUB, topic: `_TRACE.${id()}`, correlation: sid, payload: encodeBody({}) }));
  c.socket.write(Buffer.concat(fill));
  await c.flush(60_000);
  return { n, c };
}

/** CPU µs the node spends on `count` traced PUBs (fresh ids) by a connection holding `>` and `held` trace subscriptions. */
async function tracedCost(held: number, count: number): Promise<number> {
  const { c } = await setup(held);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame({ type: FrameType.PUB, topic: 'x.y', flags: Flags.TRACE, ext: { trace: id() }, payload: new Uint8Array(8) }));
  const before = process.cpuUsage();
  c.socket.write(Buffer.concat(frames));
  await c.flush(120_000);
  const used = process.cpuUsage(before);
  expect(c.events('x.y')).toHaveLength(count);
  expect(c.got.filter((g) => g.type === FrameType.ERROR)).toEqual([]);
  return used.user + used.system;
}

describe('the reserved-topic filter of a connection holding many trace subscriptions', () => {
  it('500 traced PUBs cost about the same with 10 or 9,997 trace subscriptions held beside ">" (each record used to walk them all)', async () => {
    const small = await tracedCost(10, 500);
    const large = await tracedCost(9_997, 500);
    // A complexity check, not a time limit: O(depth) per record gives a ratio near 1; the walk gave about 30.
    expect(large / small).toBeLessThan(6);
  }, 120_000);

  it('still delivers the records of a trace id it subscribed to by name, and none of others', async () => {
    const mine = id();
    const { c } = await setup(100, mine);
    c.send({ type: FrameType.PUB, topic: 'x.mine', flags: Flags.TRACE, ext: { trace: mine }, payload: new Uint8Array(1) });
    await c.waitFor((g) => g.type === FrameType.PUB && g.topic === `_TRACE.${mine}`);
    // A traced PUB under an id it holds no subscription for: its records match only ">", and the filter keeps them out.
    const other = id();
    c.send({ type: FrameType.PUB, topic: 'x.other', flags: Flags.TRACE, ext: { trace: other }, payload: new Uint8Array(1) });
    await c.waitFor((g) => g.type === FrameType.PUB && g.topic === 'x.other');
    await c.flush();
    expect(c.events(`_TRACE.${other}`)).toEqual([]);
    // Unsubscribed: its records are filtered again.
    const seen = c.events(`_TRACE.${mine}`).length;
    c.send({ type: FrameType.UNSUB, correlation: 2 });
    c.send({ type: FrameType.PUB, topic: 'x.again', flags: Flags.TRACE, ext: { trace: mine }, payload: new Uint8Array(1) });
    await c.waitFor((g) => g.type === FrameType.PUB && g.topic === 'x.again');
    await c.flush();
    expect(c.events(`_TRACE.${mine}`)).toHaveLength(seen);
  });
});
