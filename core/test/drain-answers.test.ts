/**
 * What a draining node answers before its GOODBYE, and what it takes after
 * (SPEC 10.7). Its GOODBYE is the last frame it sends: an acked publish
 * still waiting for Redis at the GOODBYE was stored and never acknowledged,
 * so a client could not tell it from one the node never took (publishing it
 * again stored it twice). A REQ read after the GOODBYE was routed although
 * its reply could not reach the requester (its subscriptions end at the
 * GOODBYE): the responder did the work for nobody. Now the GOODBYE waits
 * for the answers owed, acked publishes read meanwhile are NACKed
 * MB_ERR_DRAINING, and after it neither acked publishes nor REQs are taken:
 * every acked publish unanswered at the GOODBYE is one the node did not store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Flags, Frame, FrameType, type ErrorCode } from '@meshbus/proto';
import { RawClient, sleep } from '@meshbus/testkit';
import { ownDurableNode } from './own-durable-node.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** The payloads of every history stream under `prefix`. */
async function storedPayloads(r: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await r.keys(`${prefix}*`)) {
    if ((await r.type(key)) !== 'stream') continue;
    for (const [, fields] of await r.xrangeBuffer(key, '-', '+')) {
      const f = fields[fields.findIndex((b) => b.toString() === 'f') + 1]!;
      out.push(Buffer.from(new Frame(f, 0, f.length).payload).toString());
    }
  }
  return out;
}

describe('a draining node answers acked publishes before its GOODBYE (SPEC 10.7)', () => {
  it('every acked publish is ACKed (stored), NACKed MB_ERR_DRAINING (not stored) before the GOODBYE, or not stored', async (ctx) => {
    const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'dans:', topics: [{ pattern: 'da.>', history: { size: 10_000 } }] }, { drainTimeout: 4000 });
    const c = await RawClient.connect(n.port);
    cleanups.push(() => c.close());
    const N = 1500;
    const ackPub = (i: number): void => c.send({ type: FrameType.PUB, topic: 'da.t', correlation: i + 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from(String(i)) });
    for (let i = 0; i < 500; i++) ackPub(i);
    c.pauseReading();
    // Once the node has read some (their writes to Redis in flight), it drains.
    for (let k = 0; k < 100_000 && n.stats.msgsIn < 200; k++) await new Promise((resolve) => setImmediate(resolve));
    // The drain starts with most of these on the wire or waiting for Redis; more follow before the client reads anything.
    const stopping = n.shutdown();
    for (let i = 500; i < N; i++) ackPub(i);
    c.resumeReading();
    const bye = await c.waitFor((g) => g.type === FrameType.GOODBYE);
    c.socket.end();
    await stopping;
    const before = c.got.slice(0, c.got.indexOf(bye));
    const answers = new Map<number, ErrorCode | 'ACK'>();
    for (const g of before) {
      if (g.type === FrameType.ACK) answers.set(g.correlation - 1, 'ACK');
      if (g.type === FrameType.NACK) answers.set(g.correlation - 1, g.error!);
    }
    expect(c.got.slice(c.got.indexOf(bye) + 1).filter((g) => g.type === FrameType.ACK || g.type === FrameType.NACK)).toEqual([]);
    const stored = new Set((await storedPayloads(r, 'dans:')).map(Number));
    const wrong: string[] = [];
    for (let i = 0; i < N; i++) {
      const a = answers.get(i);
      if (a === 'ACK' && !stored.has(i)) wrong.push(`${i}: ACKed, not stored`);
      else if (a !== undefined && a !== 'ACK' && (a !== 'MB_ERR_DRAINING' || stored.has(i))) wrong.push(`${i}: NACK ${a}, stored ${stored.has(i)}`);
      else if (a === undefined && stored.has(i)) wrong.push(`${i}: stored, never answered`);
    }
    // Before: the writes in flight at the drain were stored and never answered (hundreds of "stored, never answered").
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(answers.size).toBeGreaterThan(0);
  }, 20_000);

  it('after its GOODBYE a REQ is not routed (its reply could not come back) and an acked publish not taken; plain events still are', async (ctx) => {
    const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'dreq:', topics: [{ pattern: 'dr.>', history: { size: 100 } }] }, { drainTimeout: 3000 });
    const seen: string[] = [];
    n.subscribeInternal('svc.>', (f) => seen.push(`${f.typeName} ${f.topic}`), { label: 'responder' });
    const c = await RawClient.connect(n.port);
    cleanups.push(() => c.close());
    const stopping = n.shutdown();
    await c.waitFor((g) => g.type === FrameType.GOODBYE);
    c.pub('svc.req', 'q', 7, FrameType.REQ);
    c.send({ type: FrameType.PUB, topic: 'dr.t', correlation: 8, flags: Flags.ACK_REQUESTED, payload: Buffer.from('late') });
    c.pub('svc.plain', 'p');
    await sleep(200);
    c.socket.end();
    await stopping;
    // Before: ['REQ svc.req', 'PUB svc.plain'] and 'late' stored, neither answered.
    expect(seen).toEqual(['PUB svc.plain']);
    expect(await storedPayloads(r, 'dreq:')).toEqual([]);
  }, 20_000);
});
