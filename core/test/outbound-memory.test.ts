/**
 * What a node's outbound queues hold, node-wide (SPEC 10.6). Review of the
 * flow-control pass: N never-reading 'drop' subscribers of one topic, and a
 * publisher of distinct 64 KiB events; each backlog entry was a private copy
 * per connection, so 30 MiB published became 2.4 GiB held at 400
 * subscribers (meshbus_pending_bytes 2.9 GB), with nothing bounding it
 * node-wide. Now (a) an event held for many receivers is held once (their
 * backlog entries share one copy), and (b) the outbound budget bounds what
 * all queues hold together: past it the connections holding the most shed
 * by their policy. A node in a child process run with --expose-gc (memory
 * after two full collections); bounds with wide margins, no timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, memoryNode, sleep, stuckSubscriber, type MemoryNode, type RawWs } from '@meshbus/testkit';
import { silentLogger, startNode } from '../src/index.js';

const MiB = 1024 * 1024;
const EVENT = 64 * 1024;

let node: MemoryNode | undefined;
const clients: Array<RawClient | RawWs> = [];
const inProcess: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  node?.kill();
  node = undefined;
  for (const f of inProcess.splice(0)) await f();
});

/** One value of the node's /metrics (a line without labels). */
async function metric(n: MemoryNode, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${n.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/** `count` subscribers of 'fan' (over `kind`) that never read, with `body` (slow policy). */
async function stuckSubscribers(n: MemoryNode, kind: 'TCP' | 'WebSocket', count: number, body: Record<string, unknown>): Promise<Array<RawClient | RawWs>> {
  const subs: Array<RawClient | RawWs> = [];
  for (let i = 0; i < count; i++) subs.push(await stuckSubscriber(n, kind, 'fan', body));
  clients.push(...subs);
  return subs;
}

/** Publishes `events` distinct 64 KiB events on 'fan', paced by a round trip every 16. */
async function publish(n: MemoryNode, events: number): Promise<void> {
  const pub = await RawClient.connect(n.port);
  clients.push(pub);
  for (let i = 0; i < events; i++) {
    pub.pub('fan', Buffer.alloc(EVENT, i & 0xff));
    if (i % 16 === 15) await pub.flush(15_000);
  }
  await pub.flush(15_000);
  await sleep(300);
}

describe('outbound memory: one copy per event, one bound per node', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: 12 MiB fanned out to 30 non-reading 'drop' subscribers is held about once, not 30 times`, async () => {
      // A budget far above what is held: this measures sharing alone.
      node = await memoryNode({ outboundBudget: 4096 * MiB }, { http: true });
      const n = node;
      await stuckSubscribers(n, kind, 30, { slow: 'drop' });
      const before = (await n.memory()).arrayBuffers;
      await publish(n, 192);
      const held = (await n.memory()).arrayBuffers - before;
      const pending = await metric(n, 'meshbus_pending_bytes');
      // The queues are really behind: each holds megabytes (counted per connection).
      expect(pending).toBeGreaterThan(30 * 2 * MiB);
      // Before: a private copy per connection, ~30 × (8 MiB − what the kernel took): 150-230 MiB.
      // Now: the newest ≤ 8 MiB of events once, plus headers and what the wires hold of them.
      expect(held).toBeLessThan(48 * MiB);
    }, 20_000);
  }

  it(`the outbound budget bounds all queues together: 'drop' subscribers drop, the node reports it`, async () => {
    node = await memoryNode({ outboundBudget: 32 * MiB }, { http: true });
    const n = node;
    expect(await metric(n, 'meshbus_outbound_budget_bytes')).toBe(32 * MiB);
    const subs = await stuckSubscribers(n, 'TCP', 20, { slow: 'drop' });
    const before = (await n.memory()).arrayBuffers;
    await publish(n, 192);
    const pending = await metric(n, 'meshbus_pending_bytes');
    const counted = await metric(n, 'meshbus_outbound_held_bytes');
    const held = (await n.memory()).arrayBuffers - before;
    // Before: 20 × ~8 MiB pending (each connection's maxPending), nothing node-wide.
    // Now: within the budget, plus at most one frame per connection (an empty wire takes any frame).
    expect(pending).toBeLessThanOrEqual(32 * MiB + 20 * 2 * EVENT);
    expect(counted).toBeGreaterThanOrEqual(pending);
    expect(counted).toBeLessThanOrEqual(32 * MiB + 20 * 2 * EVENT);
    expect(await metric(n, 'meshbus_outbound_budget_sheds_total')).toBeGreaterThan(0);
    expect(held).toBeLessThan(48 * MiB);
    // 'drop' subscribers lose events, they are not closed.
    expect(subs.every((s) => !s.closed)).toBe(true);
  }, 20_000);

  it(`past the outbound budget a 'disconnect' subscriber holding the most is closed as a slow consumer`, async () => {
    // maxStall short: a publisher held back by the firm receivers gives up soon and their policy applies.
    node = await memoryNode({ outboundBudget: 16 * MiB, maxStall: 200 }, { http: true });
    const n = node;
    const subs = await stuckSubscribers(n, 'TCP', 6, {});
    await publish(n, 160);
    const pending = await metric(n, 'meshbus_pending_bytes');
    // Before: 6 × 8 MiB could wait (each within its own maxPending); now the budget stays within 16 MiB (+ a frame
    // each), and the connections it closed hold at most what their wires held (up to the mark, 1 MiB) until they go.
    expect(await metric(n, 'meshbus_outbound_held_bytes')).toBeLessThanOrEqual(16 * MiB + 6 * 2 * EVENT);
    expect(pending).toBeLessThanOrEqual(16 * MiB + 6 * (MiB + 2 * EVENT));
    // Closed by the node (a reader that never reads sees the close only later): counted as slow consumers.
    expect(await metric(n, 'meshbus_slow_consumers_total')).toBeGreaterThan(0);
    expect(subs.length).toBe(6);
    // Every connection gone: the budget's count is back at 0 (queues closed with a backlog or a last frame included).
    for (const c of clients.splice(0)) c.close();
    for (let k = 0; k < 100 && (await n.connections()) > 0; k++) await sleep(50);
    let held = NaN;
    for (let k = 0; k < 50 && held !== 0; k++) {
      await sleep(100);
      held = await metric(n, 'meshbus_outbound_held_bytes');
    }
    expect(held).toBe(0);
  }, 20_000);
});

describe('the outbound budget sheds those that hold it, not a reader that keeps up', () => {
  for (const slow of ['disconnect', 'drop'] as const) {
    it(`a ${slow} subscriber that reads gets every event while non-reading 'drop' subscribers fill the budget with what their wires hold`, async () => {
      // Review of the session's own change: the budget only shed queues with a backlog; never-readers held it through
      // their wires (no backlog), so the reader asking for room was made the slow consumer (closed, or 42 of 200 lost).
      const n = await startNode({ port: 0, logger: silentLogger, outboundBudget: 4 * MiB });
      inProcess.push(() => n.close());
      for (let i = 0; i < 8; i++) {
        const s = await RawClient.connect(n.port);
        clients.push(s);
        s.sub('fan', 1, { slow: 'drop' });
        await s.flush();
        s.pauseReading();
      }
      const reader = await RawClient.connect(n.port);
      clients.push(reader);
      reader.sub('fan', 7, slow === 'drop' ? { slow: 'drop' } : {});
      await reader.flush();
      const pub = await RawClient.connect(n.port);
      clients.push(pub);
      for (let i = 0; i < 400; i++) {
        pub.pub('fan', Buffer.alloc(EVENT, i & 0xff));
        if (i % 16 === 15) await pub.flush(15_000);
      }
      const pubs: RawClient[] = [];
      for (let k = 0; k < 4; k++) pubs.push(await RawClient.connect(n.port));
      clients.push(...pubs);
      for (let i = 0; i < 50; i++) {
        for (const p of pubs) p.pub('fan', Buffer.alloc(1024, 1));
        await sleep(2);
      }
      for (const p of pubs) await p.flush(15_000);
      await reader.waitUntil(() => reader.events('fan').length >= 600, 'every event at the reader', 10_000).catch(() => undefined);
      expect({ closed: reader.closed, got: reader.events('fan').length }).toEqual({ closed: false, got: 600 });
    }, 60_000);
  }
});
