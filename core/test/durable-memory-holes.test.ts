/**
 * What a node reads back from Redis is bounded before it is read (hostile
 * review of unbounded memory, twenty-second session; each test fails on the
 * code before):
 * - a latest value or a history entry larger than any event the node stores
 *   (written into the store by someone else) was read whole into the node
 *   before it was found corrupt (a 100 MB value: node RSS 103 → 479 MB);
 * - every literal SUB on a topic of a `latest` rule read its value, also one
 *   already replaced by the next SUB on its sid (1,000 re-sent SUBs of a
 *   topic with a 1 MiB value: ~990 MB of Redis output buffers).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RawClient, until } from '@meshbus/testkit';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { ownDurableNode } from './own-durable-node.js';
import type { MeshNode } from '../src/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const P = 'mh:';
const BIG = 10 * 1024 * 1024;

async function client(n: MeshNode): Promise<Client> {
  const c = await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 } });
  cleanups.push(() => c.close());
  return c;
}

function errors(c: Client): Array<{ code: string; message: string }> {
  const said: Array<{ code: string; message: string }> = [];
  c.on('status', (s) => {
    if (s.type === 'error') said.push({ code: s.error.code, message: s.error.message });
  });
  return said;
}

/** Redis commands that read a latest value (HGET before, the bounded script now). */
async function latestReads(r: Redis): Promise<number> {
  const info = await r.info('commandstats');
  let n = 0;
  for (const cmd of ['hget', 'evalsha', 'eval']) n += Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return n;
}

describe('what the node reads back from Redis', () => {
  it('a latest value larger than the largest event stored is not read: skipped as corrupt, its size told', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, topics: [{ pattern: 'l.>', history: { size: 10 }, latest: true }] });
    const c = await client(n);
    await c.publish('l.a', 'a', { ack: true });
    const meta = `${P}m:{l.a}`;
    const epoch = (await r.hget(meta, 'e'))!;
    await r.hset(meta, 'l', Buffer.concat([Buffer.from(`${epoch}|1|`), Buffer.alloc(BIG, 7)]));
    const said = errors(c);
    const got: string[] = [];
    c.subscribe('l.a', { callback: (m: Msg) => void got.push(m.topic) });
    await until(() => said.length > 0, 'the corrupt value told');
    expect(said[0]!.code).toBe('MB_ERR_STORE_CORRUPT');
    // Before: read whole (10 MiB into the node), then "not a stored frame".
    expect(said[0]!.message).toMatch(/latest value of 10485\d+ bytes, past the largest event stored \(\d+\): not read/);
    expect(got).toEqual([]);
  }, 20_000);

  it('a history entry larger than the largest event stored is not read: skipped as corrupt, the replay goes on', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, topics: [{ pattern: 'h.>', history: { size: 10 } }] });
    const c = await client(n);
    await c.publish('h.a', 'one', { ack: true });
    const meta = `${P}m:{h.a}`;
    const epoch = (await r.hget(meta, 'e'))!;
    await r.xadd(`${P}h:{h.a}`, '2-0', 'f', Buffer.alloc(BIG, 7), 't', String(Date.now()));
    await r.hset(meta, 'o', '2');
    await c.publish('h.a', 'three', { ack: true });
    const said = errors(c);
    const got: string[] = [];
    c.subscribe('h.a', { since: { epoch, offset: 0 }, callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => got.length === 2 && said.length > 0, 'the replay around the large entry');
    expect(got).toEqual(['one', 'three']);
    expect(said[0]!.code).toBe('MB_ERR_STORE_CORRUPT');
    expect(said[0]!.message).toMatch(/entry of 10485\d+ bytes, past the largest event stored \(\d+\): not read/);
  }, 20_000);

  it('SUBs replaced on their sid before their read starts read nothing (each read the whole value)', async (ctx) => {
    const { r, n } = await ownDurableNode(ctx, cleanups, { prefix: P, topics: [{ pattern: 'v.>', history: { size: 10 }, latest: true }] });
    const c = await client(n);
    await c.publish('v.big', new Uint8Array(256 * 1024), { ack: true });
    const raw = await RawClient.connect(n.port);
    cleanups.push(() => raw.close());
    const before = await latestReads(r);
    for (let i = 0; i < 200; i++) raw.sub('v.big', 1 + (i % 5));
    await raw.flush();
    await until(async () => raw.got.filter((g) => g.sid !== undefined).length > 0 || (await latestReads(r)) > before, 'a read', 5000).catch(() => undefined);
    await new Promise((res) => setTimeout(res, 300));
    // The last SUB of each of the 5 sids reads; the 195 replaced before their turn do not (before: 200 reads).
    expect((await latestReads(r)) - before).toBeLessThanOrEqual(30);
  }, 20_000);
});
