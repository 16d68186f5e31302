/**
 * A keyed leaf that stops reading for a while, then hands back every queue copy it was sent (its member
 * ended: allowed, and each is checked against the hub's ledger, sent-copies.ts). The ledger holds at
 * most 65,536 copies per leaf; before, the hub went on giving the leaf its turn past that, so the oldest
 * copies were forgotten and their hand-backs refused as forged: 9,461 of 150,000 lost in the review.
 * Now a leaf whose ledger is half full counts as backed up (PeerLink.backedUp): the group's other
 * members take the events meanwhile, and every hand-back is taken.
 */
import { expect, it } from 'vitest';
import { FrameType, OFF, applyCrcDelta, encodeBody, patchU32, patchU8 } from '@meshbus/proto';
import { until } from '@meshbus/testkit';
import { RESENT } from '../../src/member-gone.js';
import { meshKit } from '../mesh-helpers.js';
import { announced, groupMembers, rawLeaf } from './harness.js';

const SECRET = 'in-flight-secret';
const { node, cli, clients } = meshKit();
const TOTAL = 150_000;

it('a leaf that held its input while 150,000 events were published: every event reaches a member once, no hand-back refused', async () => {
  const hub = await node({ secret: SECRET, pingInterval: 60_000 }, 'hub');
  const { c: raw, id } = await rawLeaf(SECRET, clients, hub, 'slow');
  const pub = await cli(hub);
  const sink = await cli(hub);
  const got = new Set<string>();
  let dup = 0;
  sink.subscribe('lq', { queue: 'g', callback: (m) => void (got.has(m.string()) ? dup++ : got.add(m.string())) });
  await sink.flush();
  raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'lq', 'g', 1]] }) });
  await until(() => groupMembers(hub) === 2, 'the leaf member');
  const back = await announced(raw, 'lq', 'g');
  raw.pauseReading();
  for (let i = 0; i < TOTAL; i++) {
    pub.publish('lq', String(i));
    if (i % 2000 === 1999) await pub.flush();
  }
  await pub.flush();
  // As a leaf whose member ended: each copy handed back as it is read, each checkpoint answered after the copies before it.
  let seen = 0;
  let handed = 0;
  const pump = (): void => {
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
  };
  raw.resumeReading();
  await until(() => (pump(), got.size + hub.cluster.badPeerEvents >= TOTAL), 'every event delivered or refused', 30_000);
  expect(hub.cluster.badPeerEvents).toBe(0);
  expect(got.size).toBe(TOTAL);
  expect(dup).toBe(0);
  expect(handed).toBeGreaterThan(0);
  expect(hub.cluster.link(id)!.rules!.copiesHeld).toBeLessThanOrEqual(65_536);
  // Caught up, the leaf takes its turns again (its checkpoints answered, nothing is left recorded).
  await until(() => (pump(), !hub.cluster.link(id)!.backedUp), 'the leaf no longer backed up', 10_000);
  const before = handed;
  for (let i = 0; i < 100; i++) pub.publish('lq', `after-${i}`);
  await pub.flush();
  await until(() => (pump(), got.size >= TOTAL + 100), 'the later events');
  expect(handed - before).toBeGreaterThanOrEqual(40);
});
