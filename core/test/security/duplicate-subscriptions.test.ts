import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeError, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';

/**
 * What one connection's many subscriptions to the same patterns cost
 * everyone else (eleventh session; left by the tenth's hostile review):
 *
 * - every duplicate was an entry of the routing trie, so each route of a
 *   topic not in the cache visited them all: 10,000 `>` on one connection
 *   made each first publish to a topic ~215 µs of node CPU against ~28 µs.
 *   The tries now hold one entry per (owner, pattern) (owned-pattern.ts);
 * - a queue group whose members a publisher with echo off holds itself was
 *   walked member by member at each pick to find one it may take: 9,990
 *   such members, 24 vs 3.6 µs per publish. A pick now looks at each
 *   receiver once (GroupMembers).
 *
 * Delivery is unchanged: a connection gets a plain event once for all its
 * matching subscriptions (SPEC 10.3), a queue event addressed to one member.
 */

const nodes: MeshNode[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const n of nodes.splice(0)) await n.close();
});

async function node(): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger });
  nodes.push(n);
  return n;
}

async function client(n: MeshNode, hello: Record<string, unknown> = {}): Promise<RawClient> {
  const c = await RawClient.connect(n.port, hello);
  clients.push(c);
  return c;
}

/** Sends SUBs with sids `from`.. for each pattern of `patterns` (body `body`), in one write. */
async function subscribeMany(c: RawClient, patterns: string[], from: number, body: Record<string, unknown> = {}): Promise<void> {
  const frames = patterns.map((p, i) => encodeFrame({ type: FrameType.SUB, topic: p, correlation: from + i, payload: encodeBody(body) }));
  c.socket.write(Buffer.concat(frames));
  await c.flush(60_000);
}

/** CPU µs the node spends on `count` publishes, each to a topic not published before, while one connection holds `held` subscriptions (half `>`, half `fresh.>`). */
async function freshTopicCost(held: number, count: number): Promise<number> {
  const n = await node();
  const dup = await client(n);
  await subscribeMany(dup, Array.from({ length: held }, (_, i) => (i % 2 === 0 ? '>' : 'fresh.>')), 1);
  expect(n.table.size).toBe(held);
  const pub = await client(n);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame({ type: FrameType.PUB, topic: `fresh.t${i}.x`, payload: new Uint8Array(4) }));
  const before = process.cpuUsage();
  pub.socket.write(Buffer.concat(frames));
  await pub.flush(120_000);
  const used = process.cpuUsage(before);
  await dup.flush(60_000);
  // Once per event, for all its matching subscriptions.
  expect(dup.events().filter((g) => g.topic.startsWith('fresh.'))).toHaveLength(count);
  return used.user + used.system;
}

/** CPU µs the node spends on `count` publishes by a connection (echo off) holding `held` members of group `g`, another connection holding one. */
async function ownGroupCost(held: number, count: number): Promise<number> {
  const n = await node();
  const pub = await client(n, { echo: false });
  await subscribeMany(pub, Array.from({ length: held }, (_, i) => (i % 3 === 0 ? 'work.>' : i % 3 === 1 ? 'work.*' : `*.job`)), 1, { q: 'g' });
  const other = await client(n);
  other.sub('work.job', 1, { q: 'g' });
  await other.flush();
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame({ type: FrameType.PUB, topic: 'work.job', payload: new Uint8Array(4) }));
  const before = process.cpuUsage();
  pub.socket.write(Buffer.concat(frames));
  await pub.flush(120_000);
  const used = process.cpuUsage(before);
  await other.waitFor(() => other.events('work.job').length === count, 60_000);
  expect(pub.events('work.job')).toEqual([]);
  return used.user + used.system;
}

/**
 * CPU µs the node spends on `count` publishes of 2 KiB to `feed.x` while a connection that stopped reading holds
 * `held` 'drop' subscriptions (half `>`, half `feed.>`); then it reads again: how many events were reported
 * dropped for each sid, and how many the node dropped.
 */
async function droppedCost(held: number, count: number): Promise<{ cpu: number; reported: Map<number, number>; dropped: number }> {
  const n = await startNode({ port: 0, logger: silentLogger, maxPending: 256 * 1024 });
  nodes.push(n);
  const stuck = await client(n);
  await subscribeMany(stuck, Array.from({ length: held }, (_, i) => (i % 2 === 0 ? '>' : 'feed.>')), 1, { slow: 'drop' });
  stuck.pauseReading();
  const pub = await client(n);
  const payload = new Uint8Array(2048);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(encodeFrame({ type: FrameType.PUB, topic: 'feed.x', payload }));
  const before = process.cpuUsage();
  pub.socket.write(Buffer.concat(frames));
  await pub.flush(120_000);
  const used = process.cpuUsage(before);
  const dropped = n.stats.dropped.slow;
  expect(dropped).toBeGreaterThan(1000);
  stuck.resumeReading();
  const reported = new Map<number, number>();
  const read = (): void => {
    for (const g of stuck.got.splice(0)) if (g.type === FrameType.ERROR && g.error === 'MB_ERR_EVENTS_DROPPED') reported.set(g.correlation, (reported.get(g.correlation) ?? 0) + (decodeError(g.payload).count ?? 0));
  };
  await until(() => {
    read();
    return reported.size === held && [...reported.values()].every((c) => c >= dropped - 100);
  }, 'a report on every sid', 60_000);
  // Reports still on their way come within a tick of the node's timer.
  await new Promise((r) => setTimeout(r, 1500));
  read();
  // Queuing the reports can itself push old events out (dropped, and reported, too).
  return { cpu: used.user + used.system, reported, dropped: n.stats.dropped.slow };
}

describe("one connection's duplicate subscriptions", () => {
  it("events dropped for a connection that stopped reading cost about the same whether it holds 10 or 10,000 'drop' subscriptions to them (each drop used to be recorded per sid), and each sid hears of every one", async () => {
    await droppedCost(10, 16_000); // warms the code paths up
    const small = await droppedCost(10, 16_000);
    const large = await droppedCost(10_000, 16_000);
    expect(large.cpu / small.cpu).toBeLessThan(4);
    // Every drop reported on every sid, once: a drop made while reports were being queued (a report
    // pushing an old event out) was lost for the sid being reported.
    for (const r of [small, large]) expect(new Set(r.reported.values())).toEqual(new Set([r.dropped]));
  }, 180_000);

  it('publishes to topics not in the cache cost about the same whether a connection holds 10 or 10,000 subscriptions to ">" and "fresh.>" (each route used to visit them all)', async () => {
    await freshTopicCost(10, 3_000); // warms the code paths up: the first run pays the JIT
    const small = await freshTopicCost(10, 3_000);
    const large = await freshTopicCost(10_000, 3_000);
    // A complexity check, not a time limit: one visit per (connection, pattern) gives a ratio near 1; one per subscription gave ~5-8.
    expect(large / small).toBeLessThan(4);
  }, 120_000);

  it('a queue group whose members the publisher (echo off) holds costs each pick about the same with 10 or 9,990 of them (each pick used to walk them all)', async () => {
    await ownGroupCost(10, 5_000); // warms the code paths up
    const small = await ownGroupCost(10, 5_000);
    const large = await ownGroupCost(9_990, 5_000);
    expect(large / small).toBeLessThan(4);
  }, 120_000);

  it('publishes cost about the same whether a connection holds 10 or 10,000 subscriptions to ">" with a max (each delivery used to be counted on each)', async () => {
    // The least CPU of three batches on one node: a batch of a few tens of ms moved by a GC or a loaded CI box past
    // the bound (seen in CI); the fault this guards against cost each batch seconds (10,000 counts per delivery).
    const cost = async (held: number, count: number): Promise<number> => {
      const n = await node();
      const c = await client(n);
      await subscribeMany(c, Array.from({ length: held }, () => '>'), 1, { max: 1_000_000_000 });
      const p = await client(n);
      const frames = Buffer.concat(Array.from({ length: count }, () => encodeFrame({ type: FrameType.PUB, topic: 'lim.x', payload: new Uint8Array(4) })));
      let least = Infinity;
      for (let batch = 1; batch <= 3; batch++) {
        const before = process.cpuUsage();
        p.socket.write(frames);
        await p.flush(120_000);
        const used = process.cpuUsage(before);
        least = Math.min(least, used.user + used.system);
        await c.waitFor(() => c.events('lim.x').length === batch * count, 60_000);
      }
      expect(n.table.size).toBe(held);
      return least;
    };
    await cost(10, 5_000); // warms the code paths up
    const small = await cost(10, 5_000);
    const large = await cost(10_000, 5_000);
    expect(large / small).toBeLessThan(4);
  }, 120_000);

  it('duplicates with a max each end at their own max, a max set again by UNSUB counting from then', async () => {
    const n = await node();
    const c = await client(n);
    // sids 1..50 on one pattern, sid k with max k (sent in reverse order); sid 100 with max 3, later set to 5 more.
    for (let sid = 50; sid >= 1; sid--) c.sub('lim.>', sid, { max: sid });
    c.sub('lim.>', 100, { max: 3 });
    await c.flush();
    const p = await client(n);
    const publish = async (k: number): Promise<void> => {
      for (let i = 0; i < k; i++) p.pub('lim.x', 'e');
      await p.flush();
      await c.flush();
    };
    await publish(2);
    expect(n.table.size).toBe(49);
    c.send({ type: FrameType.UNSUB, correlation: 100, payload: encodeBody({ max: 5 }) });
    await c.flush();
    await publish(8);
    // After 10 events: sids 1..10 ended; sid 100 ended 5 events after its new max (at event 7).
    expect(n.table.size).toBe(40);
    await publish(40);
    expect(n.table.size).toBe(0);
    await publish(5);
    // One plain copy per event while any of them was held: 50.
    await c.waitFor(() => c.events('lim.x').length >= 50);
    await c.flush();
    expect(c.events('lim.x')).toHaveLength(50);
  });

  it('delivery is per subscription as before: one plain copy per connection, queue copies addressed to a member, `max` counted on each', async () => {
    const n = await node();
    const c = await client(n);
    // Three plain duplicates (two with a max of 2), one 'drop' duplicate, two members of one group, on one pattern.
    c.sub('a.>', 1);
    c.sub('a.>', 2, { max: 2 });
    c.sub('a.>', 3, { max: 2 });
    c.sub('a.>', 4, { slow: 'drop' });
    c.sub('a.>', 5, { q: 'g' });
    c.sub('a.>', 6, { q: 'g' });
    await c.flush();
    expect(n.table.size).toBe(6);
    const p = await client(n);
    // One topic: a group's turns are per topic (each topic's first pick starts at random, so four
    // topics landed all on one member once in eight runs: a CI failure).
    for (let i = 0; i < 4; i++) p.pub('a.t', `e${i}`);
    await p.flush();
    await c.waitFor(() => c.events().length === 8);
    await c.flush();
    const got = c.events();
    // Each event once as a plain copy (sid 0), once to a member of the group, the members in turn.
    expect(got.filter((g) => g.sid === 0)).toHaveLength(4);
    const queued = got.filter((g) => g.sid !== 0).map((g) => g.sid);
    expect(queued).toHaveLength(4);
    expect(new Set(queued)).toEqual(new Set([5, 6]));
    // The two limited duplicates ended at their max (2 deliveries each); the others are held.
    expect(n.table.size).toBe(4);
    for (const sid of [1, 4, 5, 6]) c.send({ type: FrameType.UNSUB, correlation: sid });
    await c.flush();
    expect(n.table.size).toBe(0);
    p.pub('a.after', 'x');
    await p.flush();
    await c.flush();
    expect(c.events('a.after')).toEqual([]);
  });
});
