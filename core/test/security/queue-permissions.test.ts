import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { nodeKit, ownRedisServers, RawClient } from '@meshbus/testkit';
import { connect } from '@meshbus/sdk';
import { signHs256, silentLogger, startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { startHttp } from '../../src/http/index.js';

/**
 * A queue-group member whose token denies part of the group's pattern
 * (`subscribe: { allow: ['>'], deny: ['orders.secret'] }`, joined on
 * `orders.>`, which only overlaps the deny rule and so is accepted). Before:
 * it was picked for `orders.secret` events like any member and dropped them
 * at delivery, uncounted: 10 of 20 lost with one other member, all with a
 * durable queue's dead letters... and a durable queue's job went to it,
 * was never acknowledged, was dead-lettered and published on
 * `_DLQ.<group>`, which the same token could read: the denied payload
 * (hostile review, twentieth session). Now a member is picked only among
 * those that may receive the event (Subscriber.admits), a dead letter is
 * read only by a token that may read its event's topic, only nodes
 * publish on `_DLQ` (and `_TRACE`: the HTTP API too), and a request whose
 * subscribers all refuse it hears NO_RESPONDERS.
 */
const SECRET = 'queue-permissions-secret-of-32-bytes!';
const kit = nodeKit({ start: startNode });
const redis = ownRedisServers();
const token = (sub: string, permissions?: unknown): string =>
  signHs256({ sub, exp: Math.floor(Date.now() / 1000) + 300, ...(permissions ? { permissions } : {}) }, SECRET);
const DENIED = { subscribe: { allow: ['>'], deny: ['orders.secret'] } };

async function connectAs(n: MeshNode, sub: string, permissions?: unknown): Promise<RawClient> {
  const c = await RawClient.connect(n.port, { token: token(sub, permissions) });
  kit.defer(() => c.close());
  return c;
}

const node = (o: NodeOptions = {}): Promise<MeshNode> => kit.node({ logger: silentLogger, jwt: { hs256Secret: SECRET }, ...o });

describe('queue groups and the tokens of their members', () => {
  it('a member that may not receive a topic is passed over: every event reaches one that may', async () => {
    const n = await node();
    const denied = await connectAs(n, 'mallory', DENIED);
    const other = await connectAs(n, 'bob');
    const pub = await connectAs(n, 'alice');
    denied.sub('orders.>', 1, { q: 'workers' });
    other.sub('orders.>', 1, { q: 'workers' });
    await denied.flush();
    await other.flush();
    for (let i = 0; i < 20; i++) pub.pub('orders.secret', `s${i}`);
    for (let i = 0; i < 20; i++) pub.pub('orders.open', `o${i}`);
    await pub.flush();
    await other.waitUntil(() => other.events('orders.secret').length === 20, 'every secret event at the member that may read it');
    await denied.flush();
    expect(denied.events('orders.secret')).toHaveLength(0);
    await other.waitUntil(() => other.events('orders.open').length + denied.events('orders.open').length === 20, 'the open events');
    // Alone in its group, it gets none of them, and the rest still reach it.
    const solo = await connectAs(n, 'mallory', DENIED);
    solo.sub('orders.>', 2, { q: 'solo' });
    await solo.flush();
    pub.pub('orders.secret', 'never');
    pub.pub('orders.open', 'yes');
    await solo.waitFor((g) => g.topic === 'orders.open');
    expect(solo.events('orders.secret')).toHaveLength(0);
  });

  it('a durable queue never hands a member a job it may not receive, and its dead letter is not readable under that token', async (ctx) => {
    const server = await redis.start(ctx);
    const n = await node({ durable: { redis: server.url, prefix: 'qperm:', topics: [{ pattern: 'orders.>', queue: true }], queues: { attempts: 2, backoffMs: 50, ackTimeoutMs: 60_000 } } });
    // A durable queue on a pattern a deny rule touches is refused (permission-side-channels.test.ts); a token
    // narrowed by AUTH after the member joined is the way left to a member that may not receive some jobs.
    const member = await connectAs(n, 'mallory');
    member.sub('orders.>', 1, { q: 'evil', durable: true });
    member.sub('_DLQ.evil', 2);
    await member.flush();
    member.send({ type: FrameType.AUTH, correlation: 99, payload: encodeBody({ token: token('mallory', DENIED) }) });
    await member.waitFor((g) => g.type === FrameType.ACK && g.correlation === 99);
    const reader = await connectAs(n, 'ops');
    reader.sub('_DLQ.evil', 3);
    await reader.flush();
    const pub = await connect(`127.0.0.1:${n.port}`, { token: token('alice') });
    kit.defer(() => pub.close());
    await new Promise((r) => setTimeout(r, 500)); // the queue's registration reaches Redis
    await pub.publish('orders.secret', 'TOP-SECRET', { ack: true });
    await pub.publish('orders.open', 'fine', { ack: true });
    const open = await member.waitFor((g) => g.topic === 'orders.open');
    // Handled: its slot (the group's only one) is free for the secret job's next attempt.
    member.send({ type: FrameType.ACK, correlation: open.correlation, payload: new Uint8Array(0) });
    // The secret job had no member that may receive it: a failed attempt each time, then a dead letter, which a
    // token without rules reads and the narrowed one does not. Before, the job went to the member (which dropped
    // it) and waited 60 s for its ACK; then its dead letter was readable on _DLQ.evil under the same token.
    const letter = await reader.waitFor((g) => g.topic === '_DLQ.evil', 15_000);
    expect(letter.payload.toString()).toBe('TOP-SECRET');
    await member.flush();
    expect(member.got.filter((g) => g.payload.toString() === 'TOP-SECRET')).toEqual([]);
  }, 30_000);

  it('a request whose only subscriber may not receive it hears NO_RESPONDERS at once (it waited its whole timeout)', async () => {
    const n = await node();
    const denied = await connectAs(n, 'mallory', DENIED);
    denied.sub('orders.>', 1);
    await denied.flush();
    const req = await connectAs(n, 'alice');
    req.send({ type: FrameType.REQ, topic: 'orders.secret', correlation: 5, payload: new Uint8Array(1), ext: { reply: `_INBOX.${req.clientId}.1` } });
    const answer = await req.waitFor((g) => g.correlation === 5 && g.type === FrameType.ERROR, 2000);
    expect(answer.error).toBe('MB_ERR_NO_RESPONDERS');
    expect(denied.events('orders.secret')).toHaveLength(0);
  });

  it('only nodes publish on _DLQ and _TRACE: a client (topic or reply topic) and the HTTP API are refused', async () => {
    const n = await node({ token: undefined, jwt: undefined });
    const c = await RawClient.connect(n.port);
    kit.defer(() => c.close());
    c.pub('_DLQ.workers', 'forged', 1);
    c.send({ type: FrameType.REQ, topic: 'svc', correlation: 2, payload: new Uint8Array(1), ext: { reply: '_DLQ.workers' } });
    await c.waitUntil(() => c.got.filter((g) => g.type === FrameType.ERROR).length === 2, 'two refusals');
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(['MB_ERR_PERMISSION_DENIED', 'MB_ERR_PERMISSION_DENIED']);
    const http = await startHttp(n, { port: 0, host: '127.0.0.1', logger: false });
    kit.defer(() => http.close());
    for (const route of ['publish/_TRACE.0123456789abcdef', 'publish/_DLQ.workers', 'request/_DLQ.workers', 'trace/_TRACE.x']) {
      const r = await fetch(`${http.url}/v1/${route}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
      expect(r.status, route).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code, route).toBe('MB_ERR_PERMISSION_DENIED');
    }
  });
});
