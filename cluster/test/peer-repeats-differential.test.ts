/**
 * A link's events whose header (but for sequence and timestamp) and topic
 * repeat the event before them skip the checks it passed (the scanner's
 * SCAN_REPEAT with Repeats.UNSTAMPED; ClusterNode.peerEvent, MeshNode.repeatsRun).
 * The same byte streams from a raw peer, keyed leaf (its publish rules deny
 * some topics) or gateway into a hub as it is and into one whose repeatsRun
 * declines every frame (the full path for each event): what every local
 * subscriber receives and every counter must match. Streams repeat headers
 * with sequences that go back (the origin's order is still checked per
 * event), payloads under, at and over maxPayload, other origins (a linked
 * peer's and the hub's own: impossible; an unknown one: relayed), hops,
 * queue-group sids, traced events, extension blocks, reserved topics, and
 * PINGs and INTEREST changes between the events of a run. Any check added
 * later to a link's event that reads something the compare leaves out shows
 * here. Widened by the review of the change (a helper attacking it).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '@meshbus/testkit/property';
import { createHmac, randomBytes } from 'node:crypto';
import { Flags, FrameType, encodeBody, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { fakePeer, meshKit, rawPeer, type TestNode } from './mesh-helpers.js';

const SECRET = 'peer-repeats-secret';
const MAX = 1000; // the hubs' maxPayload
const { node } = meshKit();

/** The same stream for both, a seed per case. */
const rng = seededRandom;

type Kind = 'peer' | 'leaf' | 'gateway';
const keyHex = (label: string): string => createHmac('sha256', SECRET).update(`meshbus-leaf-key-v1|${label}`).digest('hex');
const leafId = (hex: string, salt: string): string => createHmac('sha256', hex).update(`meshbus-leaf-id-v1|${salt}`).digest('hex').slice(0, 16);

/**
 * A stream of runs of events as a link forwards them, the first origin being the link's own (`ctl`: PINGs and
 * INTEREST changes between events of a run). Sequences mostly go on, sometimes repeat (a plain and a queue copy of
 * one event) or go back (a reorder); payloads under, at and over MAX; REQs, headers, traced events, queue sids.
 */
function stream(seed: number, origins: Buffer[], ctl: boolean): Uint8Array {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const seqs = new Map<Buffer, number>(origins.map((o, i) => [o, (i + 1) * 1e15]));
  const frames: Uint8Array[] = [];
  let interest = 100;
  for (let run = 0; run < 70; run++) {
    const origin = r() < 0.6 ? origins[0]! : pick(origins);
    const spec: FrameSpec = {
      type: FrameType.PUB,
      topic: pick(['a', 'a', 'b', 'c.x', 'c.secret', 'q', 'none', '_INBOX.x', '_DLQ.g', '_TRACE.0123456789abcdef']),
      hops: pick([1, 1, 1, 2, 8]),
      maxHops: 8,
      origin,
      sid: r() < 0.05 ? 7 : 0,
    };
    const x = r();
    if (x < 0.04) Object.assign(spec, { ext: { headers: { k: 'v' } } });
    else if (x < 0.07) Object.assign(spec, { type: FrameType.REQ, ext: { reply: '_INBOX.r' } });
    else if (x < 0.1) Object.assign(spec, { flags: Flags.TRACE, ext: { trace: '0123456789abcdef' } });
    const len = Math.floor(r() * 40) + 1;
    for (let i = 0; i < len; i++) {
      const step = r();
      const seq = seqs.get(origin)! + (step < 0.85 ? 1 : step < 0.92 ? 0 : -2);
      seqs.set(origin, seq);
      const size = pick([0, 5, 16, 16, 16, 200, MAX, MAX + 1]);
      frames.push(encodeFrame({ ...spec, seq, timestamp: 1_700_000_000_000 + Math.floor(seq / 1000), payload: Buffer.alloc(size, (seq & 0xff) | 1) }));
      if (ctl && r() < 0.04) {
        const c = r();
        if (c < 0.4) frames.push(encodeFrame({ type: FrameType.PING, correlation: 1 }));
        else if (c < 0.7) frames.push(encodeFrame({ type: FrameType.INTEREST, payload: encodeBody({ add: [[interest++, pick(['a', 'c.*', 'zz', 'q']), null, 1]] }) }));
        else frames.push(encodeFrame({ type: FrameType.INTEREST, payload: encodeBody({ del: [100 + Math.floor(r() * (interest - 99))] }) }));
      }
    }
  }
  return Buffer.concat(frames);
}

interface Hub {
  t: TestNode;
  subs: RawClient[];
  link: RawClient;
  hits: { n: number };
}

interface LinkSpec {
  kind: Kind;
  id: string;
  /** Another peer of the hub's mesh: its origin is impossible over the link (origin-rules.ts). */
  linkedId: string;
  salt: string;
}

/** A hub with node id `id` (`fullPath`: its repeatsRun declines every frame), six local subscribers and a raw link of `l.kind`. */
async function hub(name: string, l: LinkSpec, fullPath: boolean, id: string): Promise<Hub> {
  const leafPermissions = { L1: { publish: { allow: ['a', 'c.*', 'q', 'none', 'end', '_INBOX.>'], deny: ['c.secret'] } } };
  const t = await node({ secret: SECRET, leafPermissions, ...(l.kind === 'gateway' ? { region: 'eu' } : {}) } as never, name, { maxPayload: MAX, id });
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
    ['none.x', { policy: 'drop' }],
  ];
  for (const [pattern, body] of specs) {
    const c = await RawClient.connect(t.node.port);
    c.sub(pattern, 1, body);
    await c.flush();
    subs.push(c);
  }
  const me = { id: l.id, name: l.kind, cluster: '127.0.0.1:1', client: '127.0.0.1:1', resentMark: true };
  const info = l.kind === 'leaf' ? { ...me, leaf: true, keyLabel: 'L1', keySalt: l.salt } : l.kind === 'gateway' ? { ...me, region: 'us', gateway: true, mesh: 'full' } : { ...me, mesh: 'full' };
  const link = await rawPeer(t.cluster.port, info as never, l.kind === 'leaf' ? keyHex('L1') : SECRET);
  await until(() => t.cluster.peers().some((p) => p.id === l.id && p.state === 'up'), `${l.kind} up`);
  await fakePeer(t, { id: l.linkedId, name: 'l', cluster: '127.0.0.1:2', client: '127.0.0.1:2', mesh: 'full' } as never, SECRET);
  return { t, subs, link, hits };
}

function seen(h: Hub): string[][] {
  return h.subs.map((c) => c.got.filter((g) => g.type === FrameType.PUB || g.type === FrameType.REQ).map((g) => `${g.typeName} ${g.topic} ${g.origin} ${g.seq} h=${g.hops} sid=${g.sid} ${g.payload.length} ${g.reply ?? ''}`));
}

/** Every counter of the node, the cluster's drops, a keyed leaf's refusals and the links up. */
function counters(h: Hub): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(h.t.node.stats as unknown as Record<string, unknown>)) {
    if (typeof v === 'number') out[k] = v;
    else if (k === 'dropped' && v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) out[`dropped.${k2}`] = v2 as number;
  }
  const c = h.t.cluster as unknown as { reorderedDropped: number; badPeerEvents: number; duplicatesDropped: number; allLinks: Set<{ rules?: { denied: number }; state: string }> };
  let denied = 0;
  for (const l of c.allLinks) denied += l.rules?.denied ?? 0;
  return { ...out, reordered: c.reorderedDropped, bad: c.badPeerEvents, dup: c.duplicatesDropped, denied, up: [...c.allLinks].filter((l) => l.state === 'up').length };
}

describe("a link's repeated headers (SCAN_REPEAT, Repeats.UNSTAMPED)", () => {
  for (const kind of ['peer', 'leaf', 'gateway'] as const) {
    for (const [seed, ctl] of [
      [1, false],
      [2, true],
      [3, false],
      [4, true],
    ] as const) {
      it(`over a ${kind} link, give every subscriber what the full path gives, with the same counters (seed ${seed}${ctl ? ', control frames mid-run' : ''})`, async () => {
        const salt = randomBytes(16).toString('hex');
        const l: LinkSpec = { kind, id: kind === 'leaf' ? leafId(keyHex('L1'), salt) : randomBytes(8).toString('hex'), linkedId: randomBytes(8).toString('hex'), salt };
        // One node id for both: the hub's own origin is refused over any link alike.
        const id = randomBytes(8).toString('hex');
        const fast = await hub(`fast-${kind}-${seed}`, l, false, id);
        const slow = await hub(`slow-${kind}-${seed}`, l, true, id);
        // The link's own origin, an unknown node's (relayed), a linked peer's and the hub's own (both impossible).
        const own = Buffer.from(l.id, 'hex');
        const bytes = stream(seed, [own, randomBytes(8), Buffer.from(l.linkedId, 'hex'), Buffer.from(id, 'hex')], ctl);
        // Cut at random points: runs span socket reads as they would.
        const r = rng(seed * 7919);
        for (let at = 0; at < bytes.length; ) {
          const next = Math.min(bytes.length, at + 1 + Math.floor(r() * 96 * 1024));
          for (const h of [fast, slow]) h.link.sendBytes(bytes.subarray(at, next));
          at = next;
        }
        // Both hubs read the whole stream: the last frame is a marker every subscriber of '>' gets.
        const end = encodeFrame({ type: FrameType.PUB, topic: 'end', origin: own, seq: 9e15, hops: 1, maxHops: 8 });
        for (const h of [fast, slow]) h.link.sendBytes(end);
        for (const h of [fast, slow]) await until(() => h.subs[2]!.got.some((g) => g.topic === 'end'), `${h.t.node.options.name} read the stream`, 10_000);
        // Each subscriber's socket is its own: wait until they hold every event their hub delivered.
        const all = (h: Hub): boolean => seen(h).flat().length === h.t.node.stats.msgsOut;
        for (const h of [fast, slow]) await until(() => all(h), `${h.t.node.options.name}'s subscribers read what it delivered`, 5000);
        expect(seen(fast)).toEqual(seen(slow));
        expect(counters(fast)).toEqual(counters(slow));
        expect(slow.hits.n).toBe(0);
        // The path was taken: most events follow one of their run.
        expect(fast.hits.n).toBeGreaterThan(50);
      }, 30_000);
    }
  }
});
