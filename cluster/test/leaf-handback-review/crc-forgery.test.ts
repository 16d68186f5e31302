/**
 * sent-copies.ts fingerprints a copy with CRC-32C (30 bits). CRC is linear: a keyed leaf holding one genuine
 * queue copy (M's origin, seq) can pick any topic/payload and solve 4 trailing payload bytes so the fingerprint
 * matches. The hub takes it as a verified hand-back (no publish rules) and delivers it as M's event.
 */
import { describe, expect, it } from 'vitest';
import type { Msg } from '@meshbus/sdk';
import { FrameType, encodeBody } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { meshKit } from '../mesh-helpers.js';
import { announced, forge, rawLeaf } from './harness.js';

const SECRET = 'crc-forgery-secret';
const { node, cli, clients } = meshKit();

describe('CRC-32C fingerprint forgery', () => {
  it('a keyed leaf whose publish rules allow telemetry.> only hands back forged content on another topic', async () => {
    const hub = await node({ secret: SECRET, leafPermissions: { 'evil-3': { publish: { allow: ['telemetry.>'] } } } }, 'hub');
    const m = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'M');
    await until(() => hub.cluster.link(m.node.id)?.state === 'up' && m.cluster.link(hub.node.id)?.state === 'up', 'mesh');
    const atHub = await cli(hub);
    const got: Msg[] = [];
    atHub.subscribe('pay.>', { queue: 'g', callback: (x: Msg) => got.push(x) });
    await atHub.flush();
    const { c: raw } = await rawLeaf(SECRET, clients, hub, 'evil-3');
    const gId = await announced(raw, 'pay.>', 'g');
    raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'pay.>', 'g', 1]] }) });
    await until(() => m.node.table.size > 0, "the leaf's interest at M");
    const pub = await cli(m);
    let copy: ReturnType<RawClient['got']['find']>;
    for (let i = 0; i < 200 && copy === undefined; i++) {
      pub.publish('pay.small', `harmless-${i}`);
      await pub.flush();
      await new Promise((r) => setTimeout(r, 10));
      copy = raw.got.find((g) => g.type === FrameType.PUB && g.topic === 'pay.small');
    }
    expect(copy).toBeDefined();
    const before = hub.cluster.badPeerEvents;
    raw.sendBytes(forge(copy!, gId, 'pay.approve', 'approve invoice 666 amount=1000000'));
    await new Promise((r) => setTimeout(r, 500));
    const forged = got.filter((x) => x.topic === 'pay.approve');
    console.log('FORGERY', { forged: forged.map((x) => ({ topic: x.topic, data: Buffer.from(x.data).subarray(0, 34).toString(), origin: x.origin, seq: x.seq })), mId: m.node.id, badPeerEvents: hub.cluster.badPeerEvents - before });
    expect(forged, 'forged content accepted as M\'s event').toHaveLength(0);
  });
});
