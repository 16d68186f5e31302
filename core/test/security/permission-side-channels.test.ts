import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { connect, type Client } from '@meshbus/sdk';
import { nodeKit, ownRedisServers, RawClient, until } from '@meshbus/testkit';
import { signHs256, silentLogger, startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { readHopRecord, type TraceHop } from '../../src/trace-hop.js';

/**
 * Side channels around a token's subscribe deny rules (a hostile review,
 * twentieth session): each let a client read, count or block events its
 * token may not receive. Each test fails on the code before.
 */
const SECRET = 'permission-side-channels-secret-32b!';
const kit = nodeKit({ start: startNode });
const redis = ownRedisServers();
const token = (sub: string, permissions?: unknown): string =>
  signHs256({ sub, exp: Math.floor(Date.now() / 1000) + 300, ...(permissions ? { permissions } : {}) }, SECRET);
const node = (o: NodeOptions = {}): Promise<MeshNode> => kit.node({ logger: silentLogger, jwt: { hs256Secret: SECRET }, ...o });

async function raw(n: MeshNode, sub: string, permissions?: unknown): Promise<RawClient> {
  const c = await RawClient.connect(n.port, { token: token(sub, permissions) });
  kit.defer(() => c.close());
  return c;
}

async function sdk(n: MeshNode, sub: string, permissions?: unknown): Promise<Client> {
  const c = await connect(`127.0.0.1:${n.port}`, { token: token(sub, permissions) });
  kit.defer(() => c.close());
  return c;
}

describe('permission side channels', () => {
  it('SUB max counts only the events the token lets through (denied ones ended it early and told how many there were)', async () => {
    const n = await node();
    const spy = await raw(n, 'spy', { subscribe: { allow: ['orders.>'], deny: ['orders.secret'] } });
    spy.sub('orders.>', 1, { max: 10 });
    await spy.flush();
    const pub = await raw(n, 'alice');
    for (let i = 0; i < 7; i++) pub.pub('orders.secret', `s${i}`);
    for (let i = 0; i < 20; i++) pub.pub('orders.public', `p${i}`);
    await pub.flush();
    await spy.waitUntil(() => spy.events('orders.public').length === 10, 'ten public events');
    await spy.flush();
    expect(spy.events('orders.public')).toHaveLength(10);
    expect(spy.events('orders.secret')).toHaveLength(0);
  });

  it("a traced event's hop record lists only the receivers that took it", async () => {
    const n = await node();
    for (const who of ['a', 'b']) (await raw(n, who)).sub('audit.>', 1);
    const denied = await raw(n, 'c', { subscribe: { deny: ['audit.login'] } });
    denied.sub('audit.>', 1);
    await denied.flush();
    const tracer = await sdk(n, 'tracer');
    const id = '0123456789abcdef';
    const hops: TraceHop[] = [];
    tracer.subscribe(`_TRACE.${id}`, { callback: (m) => void hops.push(readHopRecord(m.data)!) });
    await tracer.flush();
    tracer.publish('audit.login', 'x', { trace: id });
    await until(() => hops.length === 1, 'the hop record');
    expect(hops[0]!.to).toEqual(['client', 'client']);
  });

  it('a durable queue may not be made on a pattern a deny rule touches (it kept, counted and dead-lettered denied events)', async (ctx) => {
    const server = await redis.start(ctx);
    const n = await node({ durable: { redis: server.url, prefix: 'side1:', topics: [{ pattern: 'orders.>', queue: true }] } });
    const c = await raw(n, 'mallory', { subscribe: { allow: ['>'], deny: ['orders.secret'] } });
    c.sub('orders.>', 1, { q: 'sink', durable: true });
    c.sub('>', 2, { q: 'sink2', durable: true });
    c.sub('orders.public', 3, { q: 'fine', durable: true });
    await c.flush();
    const errors = new Map(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.correlation, g.error]));
    expect(errors.get(1)).toBe('MB_ERR_PERMISSION_DENIED');
    expect(errors.get(2)).toBe('MB_ERR_PERMISSION_DENIED');
    expect(errors.has(3)).toBe(false);
    // Deny rules under reserved prefixes do not touch a wide durable queue: it never takes _INBOX, _TRACE or _DLQ topics.
    const ops = await raw(n, 'ops', { subscribe: { deny: ['_DLQ.>', '_TRACE.>'] } });
    ops.sub('>', 4, { q: 'everything', durable: true });
    ops.sub('_DLQ.>', 5, { q: 'letters', durable: true });
    await ops.flush();
    const opsErrors = new Map(ops.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.correlation, g.error]));
    expect(opsErrors.has(4)).toBe(false);
    expect(opsErrors.get(5)).toBe('MB_ERR_PERMISSION_DENIED');
  });

  it('a dead letter dead-lettered again keeps naming its first topic, and a wide durable queue never takes dead letters', async (ctx) => {
    const server = await redis.start(ctx);
    const n = await node({
      durable: { redis: server.url, prefix: 'side2:', topics: [{ pattern: 'orders.>', queue: true }, { pattern: '_DLQ.>', queue: true }], queues: { attempts: 1, ackTimeoutMs: 60_000 } },
    });
    // A worker of the operator's (no rules) that fails every job: its dead letters go to _DLQ.q1.
    const worker = await raw(n, 'worker');
    worker.sub('orders.>', 1, { q: 'q1', durable: true });
    const all = await raw(n, 'everything');
    all.sub('>', 1, { q: 'all', durable: true });
    // A token that may read dead letters, not orders.secret: it makes a durable queue of q1's dead letters, so that
    // they are dead-lettered again (no member of q2 may receive them), and reads q2's.
    const spy = await raw(n, 'mallory', { subscribe: { allow: ['orders.>', '_DLQ.>'], deny: ['orders.secret'] } });
    spy.sub('_DLQ.q1', 1, { q: 'q2', durable: true });
    spy.sub('_DLQ.q2', 2);
    const ops = await raw(n, 'ops');
    ops.sub('_DLQ.q2', 1);
    for (const c of [worker, all, spy, ops]) await c.flush();
    await new Promise((r) => setTimeout(r, 500)); // the queues' registrations reach Redis
    const pub = await sdk(n, 'alice');
    await pub.publish('orders.secret', 'TOP-SECRET', { ack: true });
    const job = await worker.waitFor((g) => g.topic === 'orders.secret');
    worker.send({ type: FrameType.NACK, correlation: job.correlation, payload: new Uint8Array(0) });
    // The wide queue's job for the event itself, handled.
    const own = await all.waitFor((g) => g.topic === 'orders.secret');
    all.send({ type: FrameType.ACK, correlation: own.correlation, payload: new Uint8Array(0) });
    await ops.waitFor((g) => g.topic === '_DLQ.q2', 15_000);
    await spy.flush();
    await all.flush();
    expect(spy.got.filter((g) => g.payload.toString() === 'TOP-SECRET')).toEqual([]);
    expect(all.got.filter((g) => g.topic.startsWith('_DLQ.'))).toEqual([]);
  }, 30_000);
});
