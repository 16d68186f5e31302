import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeBody, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { InterestOutbox, MAX_INTEREST_BODY, type InterestBody } from '../src/interest-outbox.js';
import { fakePeer, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const ME = { id: 'aaaaaaaaaaaaaaa1', name: 'fake', cluster: '127.0.0.1:1', client: '127.0.0.1:2' };

describe('INTEREST frames: gathered per turn, cut to fit any receiver', () => {
  const nodes: TestNode[] = [];
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.close();
    for (const n of nodes.splice(0)) await stopMeshNode(n);
  });

  async function node(...a: Parameters<typeof startMeshNode>): Promise<TestNode> {
    const t = await startMeshNode(...a);
    nodes.push(t);
    return t;
  }

  /** A raw client on `t` (pings off: it answers none) holding `n` subscriptions `<prefix>.<i>`. */
  async function subscriber(t: TestNode, prefix: string, n: number): Promise<RawClient> {
    const c = await RawClient.connect(t.node.port);
    raws.push(c);
    for (let i = 0; i < n; i++) c.sub(`${prefix}.${i}`, i + 1);
    await c.flush(20_000);
    return c;
  }

  it('a snapshot larger than the receiver\'s frame limit reaches it whole (it was dropped as one bad frame, the link up and empty)', async () => {
    // maxPayload 64 KiB: frames up to ~197 KB. 20,000 entries of ~55 B: ~1.1 MB of snapshot.
    const small = { maxPayload: 64 * 1024, maxSubscriptions: 100_000, pingInterval: 60_000 };
    const a = await node({}, 'a', small);
    await subscriber(a, 'some.fairly.long.topic.name.for.the.snapshot', 20_000);
    const b = await node({ seeds: [a.peerAddr] }, 'b', small);
    await until(() => remoteInterest(b) === 20_000, 'b learned all of a\'s interest', 20_000);
    // And it routes: an event published on b reaches a's subscriber.
    expect(held(b, 'some.fairly.long.topic.name.for.the.snapshot.19999')).toBe(1);
  }, 60_000);

  it('a burst of subscriptions reaches a peer in a few frames, not one frame per subscription', async () => {
    const secret = 'correct horse battery';
    // A fake peer answers no pings.
    const a = await node({ secret, pingInterval: 60_000 }, 'a', { pingInterval: 60_000 });
    const peer = await fakePeer(a, ME, secret);
    raws.push(peer);
    const before = peer.got.filter((g) => g.type === FrameType.INTEREST).length;
    await subscriber(a, 'burst', 2_000);
    const added = (): number =>
      peer.got
        .filter((g) => g.type === FrameType.INTEREST)
        .reduce((n, g) => n + (((decodeBody(g.payload) as InterestBody).add ?? []).length), 0);
    await until(() => added() === 2_000, 'the peer was told every subscription', 10_000);
    const frames = peer.got.filter((g) => g.type === FrameType.INTEREST).length - before;
    // One input chunk of SUBs is one frame per link; 2,000 SUBs arrive in a handful of chunks.
    expect(frames).toBeLessThan(100);
  });

  it('subscribe, unsubscribe, subscribe again in one burst ends with the peer holding the subscription', async () => {
    const a = await node({}, 'a', { pingInterval: 60_000 });
    const b = await node({ seeds: [a.peerAddr] }, 'b');
    await until(() => b.cluster.link(a.node.id)?.state === 'up', 'linked');
    const c = await RawClient.connect(a.node.port);
    raws.push(c);
    // One write: the node handles all three in one turn.
    c.socket.write(Buffer.concat([
      frameOf(FrameType.SUB, 'flip.flop', 1),
      frameOf(FrameType.UNSUB, 'flip.flop', 1),
      frameOf(FrameType.SUB, 'flip.flop', 2),
      frameOf(FrameType.SUB, 'gone.soon', 3),
      frameOf(FrameType.UNSUB, 'gone.soon', 3),
    ]));
    await c.flush();
    await until(() => held(b, 'flip.flop') === 1, 'b routes flip.flop to a');
    // Settled: nothing more arrives, and the withdrawn one is not held.
    await new Promise((r) => setTimeout(r, 200));
    expect(held(b, 'flip.flop')).toBe(1);
    expect(held(b, 'gone.soon')).toBe(0);
  });

  it('interest announced before an event reaches the peer before that event (a client\'s SUB then PUB in one chunk; the event went first, so a peer reacting to it could publish before it knew of the subscription)', async () => {
    const secret = 'correct horse battery';
    const a = await node({ secret, pingInterval: 60_000 }, 'a', { pingInterval: 60_000 });
    const peer = await fakePeer(a, ME, secret);
    raws.push(peer);
    peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'ready', null, 1]] }) });
    await until(() => held(a, 'ready') === 1, 'a routes ready to the peer');
    const c = await RawClient.connect(a.node.port);
    raws.push(c);
    c.socket.write(Buffer.concat([frameOf(FrameType.SUB, 'reply.here', 1), encodeFrame({ type: FrameType.PUB, topic: 'ready', payload: Buffer.from('go') })]));
    const at = (): { interest: number; event: number } => ({
      interest: peer.got.findIndex((g) => g.type === FrameType.INTEREST && JSON.stringify(decodeBody(g.payload)).includes('reply.here')),
      event: peer.got.findIndex((g) => g.type === FrameType.PUB),
    });
    await until(() => at().interest >= 0 && at().event >= 0, 'the peer got both');
    expect(at().interest).toBeLessThan(at().event);
  });
});

/** Subscriptions `t` holds for `pattern` on behalf of its peers. */
function held(t: TestNode, pattern: string): number {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind === 'peer' && s.pattern === pattern) n++;
  });
  return n;
}

/** A SUB/UNSUB frame's bytes, to write several in one socket write (RawClient.send writes each at once). */
function frameOf(type: FrameType, topic: string, sid: number): Uint8Array {
  return encodeFrame({ type, topic, correlation: sid, payload: encodeBody({}) });
}

describe('InterestOutbox', () => {
  const entry = (id: number, pattern = `t.${id}`): [number, string, null, number] => [id, pattern, null, 1];

  it('cuts bodies at MAX_INTEREST_BODY (estimated from above) and keeps `snap` on the first only', () => {
    const o = new InterestOutbox();
    o.snapshot();
    const long = 'x'.repeat(200);
    for (let i = 1; i <= 500; i++) o.add(entry(i, `${long}.${i}`));
    const bodies = o.take();
    expect(bodies.length).toBeGreaterThan(1);
    expect(bodies[0].snap).toBe(true);
    expect(bodies.slice(1).every((b) => b.snap === undefined)).toBe(true);
    expect(bodies.flatMap((b) => b.add ?? []).map((e) => e[0])).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    for (const b of bodies) expect(encodeBody(b).length).toBeLessThanOrEqual(MAX_INTEREST_BODY);
    expect(o.empty).toBe(true);
  });

  it('an empty snapshot is still sent (the receiver drops what the link announced before)', () => {
    const o = new InterestOutbox();
    o.snapshot();
    expect(o.take()).toEqual([{ snap: true, add: [] }]);
  });

  it('a removal after an addition starts a new body (a receiver applies del before add)', () => {
    const o = new InterestOutbox();
    o.del(7);
    o.add(entry(1));
    o.del(1);
    o.del(2);
    o.add(entry(3));
    expect(o.take()).toEqual([{ del: [7], add: [entry(1)] }, { del: [1, 2], add: [entry(3)] }]);
  });
});
