/**
 * A peer's events whose header (but for sequence and timestamp) and topic
 * repeat the event before them skip the checks it passed (the scanner's
 * SCAN_REPEAT with Repeats.UNSTAMPED; ClusterNode.peerEvent, MeshNode.repeatsRun).
 * The same byte streams from a raw peer into a hub as it is and into one
 * whose repeatsRun declines every frame (the full path for each event):
 * what every local subscriber receives and every counter must match.
 * Streams repeat headers with sequences that go back (the origin's order is
 * still checked per event), payloads under, at and over maxPayload, other
 * origins (a linked peer's: impossible; an unknown one: relayed), hops,
 * queue-group sids, flags and extension blocks. Any check added later to a
 * peer's event that reads something the compare leaves out shows here.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '@meshbus/testkit/property';
import { randomBytes } from 'node:crypto';
import { FrameType, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { fakePeer, meshKit, type TestNode } from './mesh-helpers.js';

const SECRET = 'peer-repeats-secret';
const MAX = 1000; // the hubs' maxPayload
const { node } = meshKit();

/** The same stream for both, a seed per case. */
const rng = seededRandom;

/** A stream of runs of PUBs as a peer forwards them, `own` being the peer's origin, `linked` another peer's of the hub. */
function stream(seed: number, own: Buffer, linked: Buffer, other: Buffer): Uint8Array {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const seqs = new Map<Buffer, number>([
    [own, 1e15],
    [other, 2e15],
    [linked, 3e15],
  ]);
  const frames: Uint8Array[] = [];
  for (let run = 0; run < 60; run++) {
    const origin = pick([own, own, own, other, linked]);
    const spec: FrameSpec = {
      type: r() < 0.05 ? FrameType.REQ : FrameType.PUB,
      topic: pick(['a', 'a', 'b', 'c.x', 'c.y', 'q', 'none', '_INBOX.x']),
      hops: pick([1, 1, 1, 2, 8]),
      maxHops: 8,
      origin,
      sid: r() < 0.05 ? 7 : 0,
      flags: 0,
      ...(r() < 0.05 ? { ext: { headers: { k: 'v' } } } : {}),
      ...(r() < 0.03 ? { ext: { reply: '_INBOX.r' } } : {}),
    };
    const len = Math.floor(r() * 40) + 1;
    for (let i = 0; i < len; i++) {
      const step = r();
      // Mostly on, sometimes the same sequence (a plain and a queue copy of one event) or one back (a reorder).
      const seq = (seqs.get(origin) ?? 0) + (step < 0.85 ? 1 : step < 0.92 ? 0 : -2);
      seqs.set(origin, seq);
      const size = pick([0, 5, 16, 16, 16, 200, MAX, MAX + 1]);
      frames.push(encodeFrame({ ...spec, seq, timestamp: 1_700_000_000_000 + Math.floor(seq / 1000), payload: Buffer.alloc(size, (seq & 0xff) | 1) }));
    }
  }
  return Buffer.concat(frames);
}

interface Hub {
  t: TestNode;
  subs: RawClient[];
  peer: RawClient;
  hits: { n: number };
}

async function hub(name: string, peerId: string, linkedId: string, fullPath: boolean): Promise<Hub> {
  const t = await node({ secret: SECRET }, name, { maxPayload: MAX });
  const hits = { n: 0 };
  const n = t.node as unknown as { repeatsRun: (...a: unknown[]) => boolean; forwardedRepeat: (...a: unknown[]) => void };
  if (fullPath) n.repeatsRun = () => false;
  const orig = n.forwardedRepeat.bind(n);
  n.forwardedRepeat = (...a) => {
    hits.n++;
    orig(...a);
  };
  const subs: RawClient[] = [];
  const specs: Array<[string, Record<string, unknown>]> = [
    ['a', {}],
    ['c.*', {}],
    ['>', {}],
    ['b', { max: 25 }],
    ['q', { queue: 'g' }],
    ['a', { policy: 'drop' }],
  ];
  for (const [pattern, body] of specs) {
    const c = await RawClient.connect(t.node.port);
    c.sub(pattern, 1, body);
    await c.flush();
    subs.push(c);
  }
  const peer = await fakePeer(t, { id: peerId, name: 'p', cluster: '127.0.0.1:1', client: '127.0.0.1:1', mesh: 'full' } as never, SECRET);
  // A second peer, so that its origin is impossible over the first one's link (origin-rules.ts).
  await fakePeer(t, { id: linkedId, name: 'l', cluster: '127.0.0.1:2', client: '127.0.0.1:2', mesh: 'full' } as never, SECRET);
  return { t, subs, peer, hits };
}

function seen(h: Hub): string[][] {
  return h.subs.map((c) => c.got.filter((g) => g.type === FrameType.PUB || g.type === FrameType.REQ).map((g) => `${g.typeName} ${g.topic} ${g.origin} ${g.seq} h=${g.hops} sid=${g.sid} ${g.payload.length} ${g.reply ?? ''}`));
}

function counters(h: Hub): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(h.t.node.stats as unknown as Record<string, unknown>)) {
    if (typeof v === 'number') out[k] = v;
    else if (k === 'dropped' && v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) out[`dropped.${k2}`] = v2 as number;
  }
  const c = h.t.cluster;
  return { ...out, reordered: c.reorderedDropped, bad: c.badPeerEvents, dup: c.duplicatesDropped };
}

describe("a peer's repeated headers (SCAN_REPEAT, Repeats.UNSTAMPED)", () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`give every subscriber what the full path gives, with the same counters (seed ${seed})`, async () => {
      const peerId = randomBytes(8).toString('hex');
      const linkedId = randomBytes(8).toString('hex');
      const other = randomBytes(8);
      const fast = await hub(`fast-${seed}`, peerId, linkedId, false);
      const slow = await hub(`slow-${seed}`, peerId, linkedId, true);
      const bytes = stream(seed, Buffer.from(peerId, 'hex'), Buffer.from(linkedId, 'hex'), other);
      // Cut at a few random points: runs span socket reads as they would.
      const r = rng(seed * 7919);
      for (let at = 0; at < bytes.length; ) {
        const next = Math.min(bytes.length, at + 1 + Math.floor(r() * 96 * 1024));
        for (const h of [fast, slow]) h.peer.sendBytes(bytes.subarray(at, next));
        at = next;
      }
      // Both hubs read the whole stream: the last frame is a marker every subscriber of '>' gets.
      const end = encodeFrame({ type: FrameType.PUB, topic: 'end', origin: Buffer.from(peerId, 'hex'), seq: 9e15, hops: 1, maxHops: 8 });
      for (const h of [fast, slow]) h.peer.sendBytes(end);
      for (const h of [fast, slow]) await until(() => h.subs[2]!.got.some((g) => g.topic === 'end'), `${h.t.node.options.name} read the stream`, 10_000);
      // Each subscriber's socket is its own: wait until they hold every event their hub delivered.
      const all = (h: Hub): boolean => seen(h).flat().length === h.t.node.stats.msgsOut;
      for (const h of [fast, slow]) await until(() => all(h), `${h.t.node.options.name}'s subscribers read what it delivered`, 5000);
      expect(seen(fast)).toEqual(seen(slow));
      expect(counters(fast)).toEqual(counters(slow));
      expect(slow.hits.n).toBe(0);
      // The path was taken: most events follow one of their run.
      expect(fast.hits.n).toBeGreaterThan(100);
    }, 30_000);
  }
});
