import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { freePort } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { RawClient, RawWs, ownRedisServers, until, type RawFrames } from '@meshbus/testkit';
import type { PeerLink } from '../src/peer-link.js';
import { rawPeer, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * Guards for a client's link-only events in runs (489c039: hops raised in
 * place at ingress, one range per link; c1ec76c: per-event sends once a
 * link's queue is backed up), on real nodes over loopback, in the topologies
 * a run crosses: a partial-mesh chain (multi-hop forwarding), hubs and leaves
 * both ways, gateways between regions, a WebSocket publisher whose one
 * message holds every frame. Each far receiver gets exactly what one forward
 * per event gave: every event in order, the hop count of its path (valid
 * CRCs: every node checks them), nothing past maxHops (0, 1, 16), nothing
 * over its node's maxPayload (1,024 here; 1,025 is refused), frames split
 * across reads, non-event frames (PING, SUB, UNSUB) between run events, and
 * the publisher's own copies (it subscribes mid-chunk) with hops 0; events
 * with extension blocks (reply, traceparent), traced events, REQs and a
 * queue group of the publisher's between run events; durable topics on the
 * publisher's node (its own redis-server) between link-only runs; one
 * WebSocket message of 3.6 MB of events. Written
 * in a hostile review of those commits: all of this held.
 */
const nodes: TestNode[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});
async function raw(t: TestNode): Promise<RawClient> {
  const r = await RawClient.connect(t.node.port);
  raws.push(r);
  return r;
}
const pub = (topic: string, payload: Buffer, maxHops = 8): Buffer => Buffer.from(encodeFrame({ type: FrameType.PUB, topic, payload, maxHops }));
const sub = (topic: string, sid: number): Buffer => Buffer.from(encodeFrame({ type: FrameType.SUB, topic, correlation: sid, payload: encodeBody({}) }));
const unsub = (sid: number): Buffer => Buffer.from(encodeFrame({ type: FrameType.UNSUB, correlation: sid }));
const ping = (n: number): Buffer => Buffer.from(encodeFrame({ type: FrameType.PING, correlation: n }));
const label = (p: Buffer): string => (p.length > 100 ? `big${p.length}:${p[0]}` : p.toString());

it('partial mesh chain A-B-C: mixed chunk, hops, maxHops, payload limits', async () => {
  const a = await startMeshNode({ mode: 'partial' }, 'a');
  nodes.push(a);
  const b = await startMeshNode({ mode: 'partial', seeds: [a.peerAddr] }, 'b');
  nodes.push(b);
  const c = await startMeshNode({ mode: 'partial', seeds: [b.peerAddr] }, 'c', { maxPayload: 1024 });
  nodes.push(c);
  await until(() => a.cluster.link(b.node.id)?.state === 'up' && c.cluster.link(b.node.id)?.state === 'up', 'chain');
  const [rb, rc] = [await raw(b), await raw(c)];
  rb.sub('x.>', 1);
  rc.sub('x.>', 1);
  await rb.flush();
  await rc.flush();
  const p = await raw(a);
  await until(async () => {
    p.pub('x.probe', 'probe');
    await p.flush();
    return rb.events('x.probe').length > 0 && rc.events('x.probe').length > 0;
  }, 'interest');
  await new Promise((r) => setTimeout(r, 200));
  const [ab, bc] = [a.cluster.link(b.node.id) as PeerLink, b.cluster.link(c.node.id) as PeerLink];
  const counts = (): number[] => [ab.msgsOut, ab.droppedHops, bc.msgsOut, bc.droppedHops, bc.tooLargeOut, a.node.stats.noInterest, a.node.stats.msgsOut];
  const before = counts();
  const bBefore = rb.events().length;
  const cBefore = rc.events().length;
  const pBefore = p.events().length;
  type E = { topic: string; payload: Buffer; maxHops: number };
  const seq: Array<E | Buffer> = [];
  const ev: E[] = [];
  let k = 0;
  const add = (topic: string, payload: Buffer, maxHops = 8): void => {
    const e = { topic, payload, maxHops };
    seq.push(e);
    ev.push(e);
  };
  for (let i = 0; i < 10; i++) add('x.a', Buffer.from(`a${k++}`));
  add('x.a', Buffer.alloc(1024, 7)); // at C's limit
  add('x.a', Buffer.alloc(1025, 8)); // one over
  for (let i = 0; i < 5; i++) add('x.a', Buffer.from(`a${k++}`), 1);
  for (let i = 0; i < 5; i++) add('x.a', Buffer.from(`a${k++}`), 2);
  add('x.a', Buffer.from(`a${k++}`), 0);
  for (let i = 0; i < 5; i++) add('x.a', Buffer.from(`a${k++}`), 16);
  seq.push(ping(77));
  for (let i = 0; i < 5; i++) add('x.b', Buffer.from(`b${k++}`));
  seq.push(sub('x.a', 9)); // the publisher now also receives x.a (echo)
  for (let i = 0; i < 5; i++) add('x.a', Buffer.from(`a${k++}`));
  seq.push(unsub(9));
  for (let i = 0; i < 5; i++) add('x.a', Buffer.from(`a${k++}`));
  const bytes = Buffer.concat(seq.map((s) => (Buffer.isBuffer(s) ? s : pub(s.topic, s.payload, s.maxHops))));
  // Split in odd places: frames straddle the writes.
  for (let at = 0; at < bytes.length; at += 333) {
    p.sendBytes(bytes.subarray(at, Math.min(bytes.length, at + 333)));
    await new Promise((r) => setTimeout(r, 2));
  }
  await p.flush();
  const wantB = ev.filter((e) => e.maxHops >= 1).map((e) => [e.topic, label(e.payload), 1]);
  const wantC = ev.filter((e) => e.maxHops >= 2 && e.payload.length <= 1024).map((e) => [e.topic, label(e.payload), 2]);
  await until(() => rb.events().length - bBefore >= wantB.length && rc.events().length - cBefore >= wantC.length, 'events', 5000).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  const got = (r: RawClient, from: number) => r.events().slice(from).map((g) => [g.topic, label(g.payload), g.hops]);
  expect(got(rb, bBefore)).toEqual(wantB);
  expect(got(rc, cBefore)).toEqual(wantC);
  // The publisher's own copies (between SUB and UNSUB): hops 0.
  const own = p.events().slice(pBefore).map((g) => [g.topic, label(g.payload), g.hops]);
  expect(own).toEqual(ev.slice(-10, -5).map((e) => [e.topic, label(e.payload), 0]));
  // Each link counts each event once: sent, dropped for its maxHops, or too large for the peer.
  const d = counts().map((v, i) => v - before[i]!);
  // The node's msgsOut: one per receiver an event was handed to (the link, and the publisher's own copies).
  expect(d).toEqual([wantB.length, 1, wantC.length, ev.filter((e) => e.maxHops === 1).length, 1, 0, ev.length + 5]);
});

/** Sends a mixed sequence from `p` (runs, maxHops 0/1/16, a payload over 1,024) in `pieces`, checks every receiver. */
async function mixed(p: RawFrames, rcv: Array<{ r: RawClient; hops: number; limit?: number }>, topic: string, pieces: number): Promise<void> {
  await until(async () => {
    p.pub(topic, 'probe');
    await p.flush();
    return rcv.every((x) => x.r.events(topic).length > 0);
  }, 'interest');
  await new Promise((r) => setTimeout(r, 300));
  const before = rcv.map((x) => x.r.events(topic).length);
  const ev: Array<{ payload: Buffer; maxHops: number }> = [];
  for (let i = 0; i < 300; i++) {
    const payload = i % 50 === 7 ? Buffer.alloc(1025, i & 0xff) : Buffer.from(`e${i}`);
    const maxHops = i % 37 === 5 ? 0 : i % 41 === 3 ? 1 : i % 43 === 9 ? 16 : 8;
    ev.push({ payload, maxHops });
  }
  const bytes = Buffer.concat(ev.map((e) => pub(topic, e.payload, e.maxHops)));
  const step = Math.ceil(bytes.length / pieces);
  for (let at = 0; at < bytes.length; at += step) {
    p.sendBytes(bytes.subarray(at, Math.min(bytes.length, at + step)));
    await new Promise((r) => setTimeout(r, 1));
  }
  await p.flush();
  const wants = rcv.map((x) => ev.filter((e) => e.maxHops >= x.hops && e.payload.length <= (x.limit ?? Infinity)).map((e) => [label(e.payload), x.hops]));
  await until(() => rcv.every((x, i) => x.r.events(topic).length - before[i]! >= wants[i]!.length), 'events', 5000).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  rcv.forEach((x, i) => expect(x.r.events(topic).slice(before[i]).map((g) => [label(g.payload), g.hops])).toEqual(wants[i]));
}

it('hub and leaves both ways', async () => {
  const a = await startMeshNode({}, 'hub-a');
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'hub-b');
  nodes.push(b);
  const l1 = await startMeshNode({ mode: 'leaf', seeds: [a.peerAddr] }, 'leaf-1');
  nodes.push(l1);
  const l2 = await startMeshNode({ mode: 'leaf', seeds: [b.peerAddr] }, 'leaf-2', { maxPayload: 1024 });
  nodes.push(l2);
  await until(() => fullyMeshedPair(a, b) && l1.cluster.peers().some((p) => p.state === 'up') && l2.cluster.peers().some((p) => p.state === 'up'), 'topology');
  const [rb, rl2] = [await raw(b), await raw(l2)];
  rb.sub('h.>', 1);
  rl2.sub('h.>', 1);
  await rb.flush();
  await rl2.flush();
  // From leaf-1: leaf -> hub a -> hub b (2) -> leaf-2 (3).
  await mixed(await raw(l1), [{ r: rb, hops: 2 }, { r: rl2, hops: 3, limit: 1024 }], 'h.x', 7);
  // From hub a: -> b (1) -> leaf-2 (2).
  await mixed(await raw(a), [{ r: rb, hops: 1 }, { r: rl2, hops: 2, limit: 1024 }], 'h.y', 3);
});

function fullyMeshedPair(x: TestNode, y: TestNode): boolean {
  return x.cluster.link(y.node.id)?.state === 'up' && y.cluster.link(x.node.id)?.state === 'up';
}

it('gateways between regions, WebSocket publisher with one message of many frames', async () => {
  const [e0, e1, u0] = [await freePort(), await freePort(), await freePort()];
  const eu0 = await startMeshNode({ port: e0, region: 'eu', gateways: { us: [`127.0.0.1:${u0}`] } }, 'eu-0');
  nodes.push(eu0);
  const eu1 = await startMeshNode({ port: e1, region: 'eu', seeds: [`127.0.0.1:${e0}`], gateways: { us: [`127.0.0.1:${u0}`] } }, 'eu-1');
  nodes.push(eu1);
  const us0 = await startMeshNode({ port: u0, region: 'us', gateways: { eu: [`127.0.0.1:${e0}`] } }, 'us-0', { maxPayload: 1024 });
  nodes.push(us0);
  await until(() => fullyMeshedPair(eu0, eu1) && eu0.cluster.peers().some((p) => p.gateway === 'us' && p.state === 'up') && us0.cluster.peers().some((p) => p.gateway === 'eu' && p.state === 'up'), 'regions');
  const [r1, ru] = [await raw(eu1), await raw(us0)];
  r1.sub('g.>', 1);
  ru.sub('g.>', 1);
  await r1.flush();
  await ru.flush();
  await mixed(await raw(eu0), [{ r: r1, hops: 1 }, { r: ru, hops: 1, limit: 1024 }], 'g.x', 5);
  const g = await new WsGateway(eu0.node, { port: 0, host: '127.0.0.1' }).listen();
  try {
    const w = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
    try {
      await mixed(w, [{ r: r1, hops: 1 }, { r: ru, hops: 1, limit: 1024 }], 'g.w', 1);
    } finally {
      w.close();
    }
  } finally {
    await g.close();
  }
});

it('full mesh: events with extension blocks, traced events, REQs and a queue group appearing mid-chunk between run events', async () => {
  const p = await startMeshNode({}, 'p');
  nodes.push(p);
  const s = await startMeshNode({ seeds: [p.peerAddr] }, 's');
  nodes.push(s);
  const t = await startMeshNode({ seeds: [p.peerAddr] }, 't');
  nodes.push(t);
  await until(() => fullyMeshedPair(p, s) && fullyMeshedPair(p, t) && fullyMeshedPair(s, t), 'full mesh');
  const [rs, rt] = [await raw(s), await raw(t)];
  rs.sub('m.>', 1);
  rt.sub('m.>', 1);
  await rs.flush();
  await rt.flush();
  const pc = await raw(p);
  await until(async () => {
    pc.pub('m.probe', 'probe');
    await pc.flush();
    return rs.events('m.probe').length > 0 && rt.events('m.probe').length > 0;
  }, 'interest');
  await new Promise((r) => setTimeout(r, 200));
  const before = [rs.got.length, rt.got.length];
  const frames: Buffer[] = [];
  const want: string[] = [];
  const plain = (i: number): void => {
    frames.push(pub('m.a', Buffer.from(`p${i}`)));
    want.push(`m.a:p${i}`);
  };
  for (let i = 0; i < 8; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'm.a', payload: Buffer.from('reply'), ext: { reply: 'm.r' } })));
  want.push('m.a:reply');
  for (let i = 8; i < 12; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'm.a', payload: Buffer.from('tp'), ext: { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } } })));
  want.push('m.a:tp');
  for (let i = 12; i < 16; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'm.a', payload: Buffer.from('traced'), flags: 1, ext: { trace: '0123456789abcdef' } })));
  want.push('m.a:traced');
  for (let i = 16; i < 20; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.REQ, topic: 'm.a', correlation: 5, payload: Buffer.from('req'), ext: { reply: `_INBOX.${pc.clientId}.1` } })));
  want.push('m.a:req');
  for (let i = 20; i < 24; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.SUB, topic: 'm.a', correlation: 9, payload: encodeBody({ q: 'g' }) })));
  for (let i = 24; i < 30; i++) plain(i);
  frames.push(Buffer.from(encodeFrame({ type: FrameType.UNSUB, correlation: 9 })));
  for (let i = 30; i < 36; i++) plain(i);
  const bytes = Buffer.concat(frames);
  pc.sendBytes(bytes.subarray(0, 1000));
  pc.sendBytes(bytes.subarray(1000));
  await pc.flush();
  const evs = (r: RawClient, from: number): string[] => r.got.slice(from).filter((g) => g.type === FrameType.PUB || g.type === FrameType.REQ).filter((g) => g.topic === 'm.a').map((g) => `${g.topic}:${g.payload.toString()}`);
  await until(() => evs(rs, before[0]!).length >= want.length && evs(rt, before[1]!).length >= want.length, 'events', 5000).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  expect(evs(rs, before[0]!)).toEqual(want);
  expect(evs(rt, before[1]!)).toEqual(want);
  const hops = (r: RawClient, from: number): number[] => [...new Set(r.got.slice(from).filter((g) => g.topic === 'm.a').map((g) => g.hops))];
  expect(hops(rs, before[0]!)).toEqual([1]);
  expect(hops(rt, before[1]!)).toEqual([1]);
  // The publisher's own queue member got the events published while it was one, as they arrived (hops 0).
  const own = pc.got.filter((g) => g.type === FrameType.PUB && g.topic === 'm.a').map((g) => [g.payload.toString(), g.hops]);
  expect(own).toEqual([24, 25, 26, 27, 28, 29].map((i) => [`p${i}`, 0]));
});

const redisServers = ownRedisServers();

it("durable topics on the publisher's node between link-only runs: each topic in order at the far nodes, hops 1", async ({ skip }) => {
  const redis = await redisServers.start({ skip });
  const p = await startMeshNode({}, 'p', { durable: { redis: redis.url, prefix: 'lr:', topics: [{ pattern: 'd.>', history: { size: 1000 } }] } });
  nodes.push(p);
  const s = await startMeshNode({ seeds: [p.peerAddr] }, 's');
  nodes.push(s);
  await until(() => fullyMeshedPair(p, s), 'mesh');
  const rs = await raw(s);
  rs.sub('x.>', 1);
  rs.sub('d.>', 2);
  await rs.flush();
  const pc = await raw(p);
  await until(async () => {
    pc.pub('x.probe', 'probe');
    pc.pub('d.probe', 'probe');
    await pc.flush();
    return rs.events('x.probe').length > 0 && rs.events('d.probe').length > 0;
  }, 'interest');
  await new Promise((r) => setTimeout(r, 300));
  const before = [rs.events('x.a').length, rs.events('d.a').length];
  const frames: Buffer[] = [];
  for (let i = 0; i < 120; i++) frames.push(pub(i % 10 === 4 ? 'd.a' : 'x.a', Buffer.from(String(i))));
  pc.sendBytes(Buffer.concat(frames));
  await pc.flush();
  const want = (topic: string): number[] => [...Array(120).keys()].filter((i) => (i % 10 === 4) === (topic === 'd.a'));
  await until(() => rs.events('x.a').length - before[0]! >= want('x.a').length && rs.events('d.a').length - before[1]! >= want('d.a').length, 'events', 5000).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  for (const [k, topic] of ['x.a', 'd.a'].entries()) {
    expect(rs.events(topic).slice(before[k]).map((g) => [Number(g.payload.toString()), g.hops])).toEqual(want(topic).map((i) => [i, 1]));
  }
});

it('a WebSocket message of megabytes of events for links only: every event at the far node, in order, hops 1', async () => {
  const p = await startMeshNode({}, 'p');
  nodes.push(p);
  const s = await startMeshNode({ seeds: [p.peerAddr] }, 's');
  nodes.push(s);
  await until(() => fullyMeshedPair(p, s), 'mesh');
  const rs = await raw(s);
  rs.sub('w.>', 1);
  await rs.flush();
  const g = await new WsGateway(p.node, { port: 0, host: '127.0.0.1', maxPayload: 8 * 1024 * 1024 }).listen();
  try {
    const w = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
    try {
      await until(async () => {
        w.pub('w.probe', 'probe');
        await w.flush();
        return rs.events('w.probe').length > 0;
      }, 'interest');
      const n = 40_000;
      const frames: Buffer[] = [];
      for (let i = 0; i < n; i++) frames.push(pub(i % 1000 === 999 ? 'w.b' : 'w.a', Buffer.from(String(i).padStart(24, '0'))));
      const msg = Buffer.concat(frames); // ~3.6 MB in one WebSocket message
      w.sendBytes(msg);
      await w.flush(20_000);
      await until(() => rs.events('w.a').length + rs.events('w.b').length >= n, 'all events at s', 20_000).catch(() => {});
      await rs.flush();
      const got = rs.got.filter((x) => x.topic === 'w.a' || x.topic === 'w.b');
      expect(got.length).toBe(n);
      expect(got.every((x, i) => Number(x.payload.toString()) === i && x.hops === 1 && x.topic === (i % 1000 === 999 ? 'w.b' : 'w.a'))).toBe(true);
      expect((p.cluster.link(s.node.id) as PeerLink).dropped).toBe(0);
    } finally {
      w.close();
    }
  } finally {
    await g.close();
  }
});

it('a no-echo publisher subscribed to its own topic, and one with echo: the links get each event once with hops 1, the publisher what echo says', async () => {
  const p = await startMeshNode({}, 'p');
  nodes.push(p);
  const s = await startMeshNode({ seeds: [p.peerAddr] }, 's');
  nodes.push(s);
  await until(() => fullyMeshedPair(p, s), 'mesh');
  const rs = await raw(s);
  rs.sub('e.>', 1);
  await rs.flush();
  for (const echo of [false, true]) {
    const pc = await RawClient.connect(p.node.port, { echo });
    raws.push(pc);
    pc.sub('e.>', 1);
    await pc.flush();
    const topic = `e.${echo}`;
    await until(async () => {
      pc.pub(topic, 'probe');
      await pc.flush();
      return rs.events(topic).length > 0;
    }, 'interest');
    await new Promise((r) => setTimeout(r, 100));
    const before = [rs.events(topic).length, pc.events(topic).length];
    pc.sendBytes(Buffer.concat(Array.from({ length: 50 }, (_, i) => pub(topic, Buffer.from(String(i))))));
    await pc.flush();
    await until(() => rs.events(topic).length - before[0]! >= 50, 'events at s');
    await rs.flush();
    expect(rs.events(topic).slice(before[0]).map((g) => [Number(g.payload.toString()), g.hops])).toEqual([...Array(50).keys()].map((i) => [i, 1]));
    expect(pc.events(topic).slice(before[1]).map((g) => [Number(g.payload.toString()), g.hops])).toEqual(echo ? [...Array(50).keys()].map((i) => [i, 0]) : []);
  }
});

it('a peer that stops reading, then reads again: each event of the runs sent to it arrives or is counted dropped, exactly once', async () => {
  // Small events and a small payload limit: a link's bound is at least two of the node's largest frames.
  const p = await startMeshNode({ mode: 'partial', maxPending: 256 * 1024, pingInterval: 10_000 }, 'p', { maxStall: 50, maxPayload: 64 * 1024 });
  nodes.push(p);
  const id = '5eed5eed5eed5eed';
  const peer = await rawPeer(p.cluster.port, { id, name: 'slow', cluster: '127.0.0.1:1', client: '127.0.0.1:1' });
  raws.push(peer);
  await until(() => p.cluster.peers().some((x) => x.id === id && x.state === 'up'), 'the raw peer is up');
  peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'feed', null, 1]] }) });
  await until(() => remoteInterest(p) > 0, "the peer's interest at P");
  peer.pauseReading();
  const pc = await raw(p);
  const frame = (i: number): Buffer => pub('feed', Buffer.from(String(i).padStart(32, '0')));
  const link = p.cluster.link(id) as PeerLink;
  const n = 120 * 600;
  for (let k = 0; k < 120; k++) {
    pc.sendBytes(Buffer.concat(Array.from({ length: 600 }, (_, j) => frame(k * 600 + j))));
    if (k % 10 === 9) await pc.flush(10_000);
  }
  await pc.flush(10_000);
  expect(link.state).toBe('up');
  expect(link.dropped).toBeGreaterThan(0);
  peer.resumeReading();
  const got = (): number[] => peer.got.filter((g) => g.type === FrameType.PUB && g.topic === 'feed').map((g) => Number(g.payload.toString()));
  await until(() => got().length + link.dropped >= n, 'every event arrived or dropped', 20_000).catch(() => {});
  await peer.flush().catch(() => {});
  const seen = got();
  // In order, no duplicate, and each event either arrived or was counted dropped.
  expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
  expect(seen.length + link.dropped).toBe(n);
  expect(link.msgsOut).toBeGreaterThanOrEqual(seen.length);
  expect(peer.got.filter((g) => g.type === FrameType.PUB && g.topic === 'feed').every((g) => g.hops === 1)).toBe(true);
  expect(p.node.stats.noInterest).toBe(0);
});
