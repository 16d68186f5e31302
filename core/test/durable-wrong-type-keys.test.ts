import { afterEach, describe, expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { ownDurableNode } from './own-durable-node.js';
import { storeFailure } from '../src/durable/connection-error.js';
import { bullPrefix, queueName } from '../src/durable/queue-names.js';
import { silentLogger, startNode, type MeshNode } from '../src/index.js';

/**
 * Keys of the wrong Redis type (SPEC 15.7/15.8). Hostile review of
 * 2026-12-02 (F6, F7): Redis is shared, and a key the node owns written with
 * another type blocked, for good, a topic (`m:{topic}` a string), every new
 * topic of a rule (`tp:<rule>`), every delayed publish of the mesh (`dq` a
 * list) — each NACKed MB_ERR_STORE_UNAVAILABLE ("WRONGTYPE …"), a code that
 * says "retry"; `lt:<rule>` NACKed a publish whose event was stored; a failed
 * stream write still took an offset (a hole). And a SUB `since` on a topic
 * never published created its keys outside the topic quota: 5,000 SUBs under
 * maxTopics 10 left 5,002 keys. Now such keys are lost data: replaced (a
 * fresh epoch, ERROR 4010 to resuming readers, counted), and reads write
 * nothing. Each test runs its own redis-server (it writes garbage on purpose).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const P = 'wt:';

async function client(n: MeshNode): Promise<Client> {
  const c = await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 } });
  cleanups.push(() => c.close());
  return c;
}

/** What a client hears about its subscriptions: recoveries and errors on a sid. */
function statuses(c: Client): string[] {
  const said: string[] = [];
  c.on('status', (s) => {
    if (s.type === 'recovery') said.push(`recovery ${s.recovered} ${s.position.epoch} ${s.position.offset}`);
    // Any error (a subscription's ERROR may reach the client's status feed before the SDK ties it to its sid).
    if (s.type === 'error') said.push(`error ${s.error.code}`);
  });
  return said;
}

const outcome = (p: Promise<unknown>): Promise<string> => p.then(
  () => 'ACK',
  (e: { code?: string; message?: string }) => `NACK ${e.code}: ${e.message}`,
);

describe('keys of the wrong type are corrupt data, replaced; never a permanent "store unavailable"', () => {
  it('a topic meta key that is a string: the publish is stored in a fresh epoch, a reader resuming from before gets recovered=false and 4010, counted', async (ctx) => {
    const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: P, writeTimeoutMs: 2000, topics: [{ pattern: 'w.>', history: { size: 100 } }] });
    const c = await client(n);
    const first = await c.publish('w.a', 'one', { ack: true });
    await r.del(`${P}m:{w.a}`);
    await r.set(`${P}m:{w.a}`, 'garbage');
    let pos: { epoch: string; offset: number } | undefined;
    const said = await outcome(c.publish('w.a', 'two', { ack: true }).then((p) => void (pos = p as typeof pos)));
    expect(said).toBe('ACK');
    expect(pos!.epoch).not.toBe(first!.epoch);
    expect(pos!.offset).toBe(1);
    expect(await r.type(`${P}m:{w.a}`)).toBe('hash');
    // A later publish goes on in that epoch.
    expect((await c.publish('w.a', 'three', { ack: true }))!.offset).toBe(2);

    const heard = statuses(c);
    const got: string[] = [];
    const corruptBefore = n.stats.store.corrupt;
    c.subscribe('w.a', { since: first!, callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => heard.length >= 2, 'recovery and error', 3000).catch(() => {});
    expect(heard).toEqual(['error MB_ERR_STORE_CORRUPT', `recovery false ${pos!.epoch} 2`]);
    expect(n.stats.store.corrupt).toBeGreaterThan(corruptBefore);
    expect(got).toEqual([]);
    // Nor at offset 0 of an older epoch (a reader that had seen nothing): the reset may have taken its history.
    heard.length = 0;
    c.subscribe('w.a', { since: { epoch: '0123456789abcdef', offset: 0 }, callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => heard.length >= 2, 'recovery and error', 3000).catch(() => {});
    expect(heard).toEqual(['error MB_ERR_STORE_CORRUPT', `recovery false ${pos!.epoch} 2`]);
    expect(got).toEqual([]);
  }, 15_000);

  it('a stream key of another type, or one holding entries past the offset: stored in a fresh epoch; offsets only for entries written (no hole)', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, writeTimeoutMs: 2000, topics: [{ pattern: 'w.>', history: { size: 100 } }] });
    const c = await client(n);
    const a1 = await c.publish('w.s', 'x', { ack: true });
    await r.del(`${P}h:{w.s}`);
    await r.set(`${P}h:{w.s}`, 'garbage');
    let pos: { epoch: string; offset: number } | undefined;
    expect(await outcome(c.publish('w.s', 'y', { ack: true }).then((p) => void (pos = p as typeof pos)))).toBe('ACK');
    expect(pos!.epoch).not.toBe(a1!.epoch);
    expect(pos!.offset).toBe(1);
    expect(await r.hget(`${P}m:{w.s}`, 'o')).toBe('1');
    expect(await r.xlen(`${P}h:{w.s}`)).toBe(1);

    const b1 = await c.publish('w.b', 'x', { ack: true });
    await r.xadd(`${P}h:{w.b}`, '50-0', 'f', 'junk');
    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push(await outcome(c.publish('w.b', `y${i}`, { ack: true })));
    expect(after).toEqual(['ACK', 'ACK', 'ACK']);
    const ids = (await r.xrange(`${P}h:{w.b}`, '-', '+')).map(([id]) => id);
    expect(ids).toEqual(['1-0', '2-0', '3-0']);
    expect(await r.hget(`${P}m:{w.b}`, 'o')).toBe('3');
    expect(await r.hget(`${P}m:{w.b}`, 'e')).not.toBe(b1!.epoch);
  }, 15_000);

  it('the latest index of a rule that is a string: the publish is ACKed (its event is stored), the index replaced, the value served', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, writeTimeoutMs: 2000, topics: [{ pattern: 'l.>', history: { size: 10 }, latest: true }] });
    const c = await client(n);
    await c.publish('l.a', 'a', { ack: true });
    await r.del(`${P}lt:l.>`);
    await r.set(`${P}lt:l.>`, 'garbage');
    expect(await outcome(c.publish('l.b', 'b', { ack: true }))).toBe('ACK');
    expect(await r.type(`${P}lt:l.>`)).toBe('set');
    const got: string[] = [];
    c.subscribe('l.>', { callback: (m: Msg) => void got.push(`${m.topic}=${Buffer.from(m.data).toString()}`) });
    await until(() => got.includes('l.b=b'), 'latest value of l.b');
  }, 15_000);

  it('the topic set of a rule that is a string: a new topic is admitted (the count restarts), and maxTopics holds again after', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, writeTimeoutMs: 2000, topics: [{ pattern: 't.>', history: { size: 10 }, maxTopics: 2 }] });
    await r.set(`${P}tp:t.>`, 'garbage');
    const c = await client(n);
    const said: string[] = [];
    for (const t of ['t.a', 't.b', 't.c']) said.push((await outcome(c.publish(t, 'x', { ack: true }))).split(':')[0]!);
    expect(said).toEqual(['ACK', 'ACK', 'NACK MB_ERR_STORE_FULL']);
    expect((await r.smembers(`${P}tp:t.>`)).sort()).toEqual(['t.a', 't.b']);
  }, 15_000);

  it('the delayed counter that is a list: a delayed publish is accepted and published when due, the counter replaced', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, writeTimeoutMs: 2000, topics: [{ pattern: 'd.>', history: { size: 10 } }] });
    await r.rpush(`${P}dq`, 'a');
    const c = await client(n);
    const got: string[] = [];
    c.subscribe('d.x', { callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
    await c.flush();
    expect(await outcome(c.publish('d.x', 'later', { ack: true, delay: 100 }))).toBe('ACK');
    await until(() => got.includes('later'), 'delayed publish delivered', 8000);
    expect(await r.type(`${P}dq`)).toBe('hash');
    await until(async () => (await r.hget(`${P}dq`, 'n')) === '0', 'reservation released');
  }, 15_000);

  it('a WRONGTYPE that still reaches a caller is said as corrupt store data, not as an unavailable store', async (ctx) => {
    const { r } = await ownDurableNode(ctx, cleanups, { prefix: P, topics: [{ pattern: 'w.>' }] });
    await r.set('k', 'v');
    const e = await r.hget('k', 'f').then(() => undefined, (x: unknown) => x);
    expect(e).toBeDefined();
    const said = storeFailure(e);
    expect(said).toMatch(/^store data corrupt: a redis key holds the wrong type/);
    expect(said).toMatch(/retrying does not help/);
  }, 15_000);

  it("a publish refused for one queue group's key of the wrong type adds no job to the other groups' queues", async (ctx) => {
    // Before: the good groups kept a job per NACKed publish, and each retry of the publisher added one more.
    const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: P });
    const setup = await client(n);
    for (const g of ['good1', 'good2', 'bad']) setup.subscribe('pq.t', { queue: g, durable: true, callback: () => {} });
    await until(async () => (await r.scard(`${P}queues`)) === 3, 'three queues registered');
    await setup.close();
    const c = await client(n);
    // Warm: the job counts read (queues.maxJobs) are fresh, so no count read meets the bad key before the adds.
    expect(await outcome(c.publish('pq.t', 'warm', { ack: true }))).toBe('ACK');
    const bad = `${bullPrefix(P)}:${queueName('pq.t', 'bad')}:wait`;
    await r.del(bad);
    await r.set(bad, 'not a list');
    const said: string[] = [];
    for (let i = 0; i < 5; i++) said.push((await outcome(c.publish('pq.t', `x${i}`, { ack: true }))).split(':')[0]!);
    expect(said).toEqual(Array(5).fill('NACK MB_ERR_STORE_CORRUPT'));
    expect(await n.durability!.backlog('pq.t', 'good1')).toBe(1);
    expect(await n.durability!.backlog('pq.t', 'good2')).toBe(1);
    // The key removed, a publish goes to all three again.
    await r.del(bad);
    expect(await outcome(c.publish('pq.t', 'after', { ack: true }))).toBe('ACK');
    expect(await n.durability!.backlog('pq.t', 'good1')).toBe(2);
  }, 20_000);
});

describe('reading history writes nothing (SPEC 15.8 topic bound)', () => {
  it('SUB since on 40 never-published topics under maxTopics 10 leaves no key; a live reader of a topic with nothing yet gets its first events in order, recovered', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, topics: [{ pattern: 'h.>', history: { size: 100 }, maxTopics: 10 }] });
    const c = await client(n);
    await c.flush();
    // Not BullMQ's: its delayed-publish worker makes its keys as it starts, whenever the node's start lets it.
    const own = async (): Promise<string[]> => (await r.keys('*')).filter((k) => !k.startsWith(bullPrefix(P))).sort();
    const keys0 = await own();
    const heard = statuses(c);
    for (let i = 0; i < 40; i += 20) {
      const subs = [];
      for (let k = i; k < i + 20; k++) subs.push(c.subscribe(`h.user${k}`, { since: { epoch: '', offset: 0 } }));
      await until(() => heard.length >= i + 20, 'recoveries');
      for (const s of subs) s.unsubscribe();
    }
    expect(await own()).toEqual(keys0);
    expect(await r.scard(`${P}tp:h.>`)).toBe(0);
    // "From now" on a topic with nothing yet: recovered, at offset 0.
    expect(heard.every((h) => /^recovery true [0-9a-f]{16} 0$/.test(h))).toBe(true);

    // A live reader: the first write takes the epoch the reader was given, no break at the seam.
    heard.length = 0;
    const live: string[] = [];
    c.subscribe('h.live', { since: { epoch: '', offset: 0 }, callback: (m: Msg) => void live.push(Buffer.from(m.data).toString()) });
    await until(() => heard.length === 1, 'live recovery');
    for (const x of ['a', 'b']) await c.publish('h.live', x, { ack: true });
    await until(() => live.length === 2, 'live events');
    expect(live).toEqual(['a', 'b']);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatch(/^recovery true [0-9a-f]{16} 0$/);
    expect(await r.scard(`${P}tp:h.>`)).toBe(1);
  }, 15_000);

  it('a reader that saw nothing yet, away while another node publishes the first events, gets them all on resuming (recovered)', async (ctx) => {
    const durable = { prefix: P, topics: [{ pattern: 'h.>', history: { size: 100 }, maxTopics: 10 }] };
    const { server, n: a } = await ownDurableNode(ctx, cleanups, durable);
    const b = await startNode({ port: 0, logger: silentLogger, durable: { redis: server.url, ...durable } });
    cleanups.push(() => b.close());
    const ca = await client(a);
    const heard = statuses(ca);
    const s1 = ca.subscribe('h.r', { since: { epoch: '', offset: 0 } });
    await until(() => heard.length === 1, 'first recovery');
    const at = /^recovery true ([0-9a-f]{16}) 0$/.exec(heard[0]!)![1]!;
    s1.unsubscribe();
    const cb = await client(b);
    for (const x of ['1', '2', '3']) await cb.publish('h.r', x, { ack: true });
    heard.length = 0;
    const got: string[] = [];
    ca.subscribe('h.r', { since: { epoch: at, offset: 0 }, callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => got.length === 3, 'replayed');
    expect(got).toEqual(['1', '2', '3']);
    expect(heard[0]).toMatch(/^recovery true [0-9a-f]{16} 0$/);
    // A position from another epoch at offset 0 whose time is after the history began is not recovered.
    heard.length = 0;
    ca.subscribe('h.r', { since: { epoch: 'fffffffffff00000', offset: 0 } });
    await until(() => heard.length === 1, 'recovery of a later position');
    expect(heard[0]).toMatch(/^recovery false [0-9a-f]{16} 3$/);
  }, 15_000);
});
