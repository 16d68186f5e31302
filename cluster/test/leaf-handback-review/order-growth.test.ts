/**
 * A hostile keyed leaf hands back every copy it is sent (allowed) and never answers a checkpoint PING.
 * held (the Map) stays small, so trim() never runs: SentCopies.order keeps one key string per copy ever sent.
 * The stated bound (65,536 held, ~10 MB) does not bound it.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, OFF, applyCrcDelta, encodeBody, patchU32, patchU8 } from '@meshbus/proto';
import { until } from '@meshbus/testkit';
import { RESENT } from '../../src/member-gone.js';
import { meshKit } from '../mesh-helpers.js';
import { announced, groupMembers, rawLeaf } from './harness.js';

const SECRET = 'order-growth-secret';
const { node, cli, clients } = meshKit();
const TOTAL = Number(process.env['TOTAL'] ?? 150_000);

describe('SentCopies.order under hand-back-everything, answer-no-checkpoint', () => {
  it('stays bounded', async () => {
    const hub = await node({ secret: SECRET, pingInterval: 60_000 }, 'hub');
    const { c: raw, id } = await rawLeaf(SECRET, clients, hub, 'hoarder');
    const pubAtHub = await cli(hub);
    const sink = await cli(hub);
    sink.subscribe('lq', { queue: 'g', callback: () => {} });
    await sink.flush();
    raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'lq', 'g', 1]] }) });
    await until(() => groupMembers(hub) === 2, 'the raw leaf member');
    const back = await announced(raw, 'lq', 'g');
    let seen = 0;
    let handed = 0;
    const pump = (): void => {
      for (; seen < raw.got.length; seen++) {
        const g = raw.got[seen]!;
        if (g.type !== FrameType.PUB || g.topic !== 'lq') continue;
        const b = Buffer.from(g.bytes);
        // hand back as group 'other' is refused (sent for g); the hub announced no 'g' to us, so use the sid we know
        applyCrcDelta(b, 0, patchU8(b, 0, OFF.HOPS, g.hops + 1) ^ patchU32(b, 0, OFF.SID, back + RESENT));
        raw.sendBytes(b);
        handed++;
        raw.got[seen] = undefined as never;
      }
    };
    for (let i = 0; i < TOTAL; i++) {
      pubAtHub.publish('lq', String(i));
      if (i % 2000 === 1999) {
        await pubAtHub.flush();
        pump();
      }
    }
    await pubAtHub.flush();
    await new Promise((r) => setTimeout(r, 300));
    pump();
    await new Promise((r) => setTimeout(r, 300));
    const rules = hub.cluster.link(id)!.rules!;
    const copies = (rules as unknown as { copies: { order: string[]; head: number; held: Map<string, number>; marks: unknown[] } }).copies;
    const out = { sent: TOTAL, toLeaf: (rules as unknown as { copies: { written: number } }).copies.written, handed, held: copies.held.size, orderLen: copies.order.length, head: copies.head, marks: copies.marks.length, badPeerEvents: hub.cluster.badPeerEvents };
    console.log('ORDER', out);
    expect(out.orderLen - out.head).toBeLessThanOrEqual(65_536 + 256);
  });
});
