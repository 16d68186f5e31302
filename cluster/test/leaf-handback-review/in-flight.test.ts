/**
 * A keyed leaf that stops reading for a while, then hands back every queue copy it was sent (its member
 * ended: allowed, and each is checked against the hub's ledger, sent-copies.ts). The ledger holds at
 * most 65,536 copies per leaf; before, the hub went on giving the leaf its turn past that, so the oldest
 * copies were forgotten and their hand-backs refused as forged: 9,464 of 150,000 lost. Now a leaf whose
 * ledger is half full is passed over (Subscriber.passedOver): the group's other members take the events
 * meanwhile, in any tier (the twenty-seventh session's review: with the leaf the hub's only local member
 * and the other on a peer, the leaf still got every copy, 54,464 of 120,000 refused), and every hand-back
 * is taken. Hand-backs take turns among the members they are passed on to (the same review: a pick that
 * found no local member moved the position anyway, so of two peers' members one got all 2,000).
 */
import { expect, it } from 'vitest';
import { FrameType, OFF, applyCrcDelta, encodeBody, patchU32, patchU8 } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import type { Client } from '@meshbus/sdk';
import { RESENT } from '../../src/member-gone.js';
import { fullyMeshed, meshKit, type TestNode } from '../mesh-helpers.js';
import { announced, groupMembers, rawLeaf } from './harness.js';

const SECRET = 'in-flight-secret';
const { node, cli, clients } = meshKit();

/** A member of `g` on `lq` at `c`: what it got, and how many came twice. */
function member(c: Client): { got: Set<string>; dup: number } {
  const m = { got: new Set<string>(), dup: 0 };
  c.subscribe('lq', { queue: 'g', callback: (e) => void (m.got.has(e.string()) ? m.dup++ : m.got.add(e.string())) });
  return m;
}

/**
 * A raw keyed leaf on `hub` with a member of `g`, its input held; `handBack()` then reads what came as a leaf whose
 * member ended does: each copy handed back as it is read, each checkpoint answered after the copies before it.
 */
async function heldLeaf(hub: TestNode, members: number): Promise<{ raw: RawClient; id: string; handBack: () => number }> {
  const { c: raw, id } = await rawLeaf(SECRET, clients, hub, 'slow');
  raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'lq', 'g', 1]] }) });
  await until(() => groupMembers(hub) === members, 'the leaf member');
  const back = await announced(raw, 'lq', 'g');
  raw.pauseReading();
  let seen = 0;
  let handed = 0;
  const handBack = (): number => {
    for (; seen < raw.got.length; seen++) {
      const g = raw.got[seen]!;
      if (g.type === FrameType.PING) raw.send({ type: FrameType.PONG, correlation: g.correlation });
      else if (g.type === FrameType.PUB && g.topic === 'lq') {
        const b = Buffer.from(g.bytes);
        applyCrcDelta(b, 0, patchU8(b, 0, OFF.HOPS, g.hops + 1) ^ patchU32(b, 0, OFF.SID, back + RESENT));
        raw.sendBytes(b);
        handed++;
      }
      raw.got[seen] = undefined as never;
    }
    return handed;
  };
  return { raw, id, handBack };
}

async function publish(c: Client, total: number, prefix = ''): Promise<void> {
  for (let i = 0; i < total; i++) {
    c.publish('lq', `${prefix}${i}`);
    if (i % 2000 === 1999) await c.flush();
  }
  await c.flush();
}

it('a leaf that held its input while 150,000 events were published: every event reaches a member once, no hand-back refused', async () => {
  const TOTAL = 150_000;
  const hub = await node({ secret: SECRET, pingInterval: 60_000 }, 'hub');
  const pub = await cli(hub);
  const sink = member(await cli(hub));
  const { raw, id, handBack } = await heldLeaf(hub, 2);
  await publish(pub, TOTAL);
  raw.resumeReading();
  await until(() => (handBack(), sink.got.size + hub.cluster.badPeerEvents >= TOTAL), 'every event delivered or refused', 30_000);
  expect(hub.cluster.badPeerEvents).toBe(0);
  expect(sink.got.size).toBe(TOTAL);
  expect(sink.dup).toBe(0);
  expect(handBack()).toBeGreaterThan(0);
  expect(hub.cluster.link(id)!.rules!.copiesHeld).toBeLessThanOrEqual(65_536);
  // Caught up, the leaf takes its turns again (its checkpoints answered, nothing is left recorded).
  await until(() => (handBack(), !hub.cluster.link(id)!.passedOver), 'the leaf no longer passed over', 10_000);
  const before = handBack();
  await publish(pub, 100, 'after-');
  await until(() => (handBack(), sink.got.size >= TOTAL + 100), 'the later events');
  expect(handBack() - before).toBeGreaterThanOrEqual(40);
});

it('the leaf is its hub\'s only local member, the other on a peer: the peer\'s member takes the events meanwhile (before: 54,464 of 120,000 refused)', async () => {
  const TOTAL = 120_000;
  const hub = await node({ secret: SECRET, pingInterval: 60_000 }, 'hub');
  const peer = await node({ secret: SECRET, pingInterval: 60_000, seeds: [hub.peerAddr] }, 'peer');
  await until(() => fullyMeshed([hub, peer]), 'meshed');
  const sink = member(await cli(peer));
  await until(() => groupMembers(hub) === 1, "the peer's member at the hub");
  const { raw, handBack } = await heldLeaf(hub, 2);
  await publish(await cli(hub), TOTAL);
  await until(() => sink.got.size >= TOTAL / 2, "the peer's member takes events while the leaf is behind", 30_000);
  raw.resumeReading();
  await until(() => (handBack(), sink.got.size + hub.cluster.badPeerEvents >= TOTAL), 'every event delivered or refused', 30_000);
  expect(hub.cluster.badPeerEvents).toBe(0);
  expect(sink.got.size).toBe(TOTAL);
  expect(sink.dup).toBe(0);
});

it('hand-backs from the hub\'s only local member take turns among two peers\' members (before: 0 / 2,000)', async () => {
  const TOTAL = 2_000;
  const hub = await node({ secret: SECRET, pingInterval: 60_000 }, 'hub');
  const p1 = await node({ secret: SECRET, pingInterval: 60_000, seeds: [hub.peerAddr] }, 'P1');
  const p2 = await node({ secret: SECRET, pingInterval: 60_000, seeds: [hub.peerAddr] }, 'P2');
  await until(() => fullyMeshed([hub, p1, p2]), 'meshed');
  const at1 = member(await cli(p1));
  const at2 = member(await cli(p2));
  await until(() => groupMembers(hub) === 2, "the peers' members at the hub");
  const { raw, handBack } = await heldLeaf(hub, 3);
  // The leaf is the hub's only local member: the burst goes to it; its member ended, it hands each back.
  await publish(await cli(hub), TOTAL);
  raw.resumeReading();
  await until(() => (handBack(), at1.got.size + at2.got.size >= TOTAL), 'every hand-back at a peer', 30_000);
  expect(handBack()).toBe(TOTAL);
  expect(at1.got.size + at2.got.size).toBe(TOTAL);
  expect(Math.min(at1.got.size, at2.got.size)).toBeGreaterThanOrEqual(TOTAL / 2 - 1);
});
