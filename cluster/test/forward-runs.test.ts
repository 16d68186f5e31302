import { afterEach, describe, expect, it } from 'vitest';
import type { Client, Msg } from '@meshbus/sdk';
import { freePort, until } from '@meshbus/testkit';
import { client, collect, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

// Events crossing two nodes, in runs of 1 to 40 on one topic (what an SDK writes in one
// chunk): the far node delivers a peer's back-to-back events on one topic as one range
// (core publish-run.ts), beside receivers that take each event on its own (a queue group,
// a `max`). Each local receiver must get what one delivery per event gives, and a queue
// group each event once (SPEC §10.3: exactly one member mesh-wide), whatever else on the
// node subscribes to the same topic.

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});

/** Starts the publisher's node and the subscribers' node, linked as the topology says. */
const topologies: Record<string, () => Promise<[TestNode, TestNode]>> = {
  'full mesh': async () => {
    const p = await startMeshNode({}, 'p');
    return [p, await startMeshNode({ seeds: [p.peerAddr] }, 's')];
  },
  'partial mesh': async () => {
    const p = await startMeshNode({ mode: 'partial' }, 'p');
    return [p, await startMeshNode({ mode: 'partial', seeds: [p.peerAddr] }, 's')];
  },
  'hub to leaf': async () => {
    const p = await startMeshNode({}, 'p');
    return [p, await startMeshNode({ mode: 'leaf', seeds: [p.peerAddr] }, 's')];
  },
  'leaf to hub': async () => {
    const s = await startMeshNode({}, 's');
    return [await startMeshNode({ mode: 'leaf', seeds: [s.peerAddr] }, 'p'), s];
  },
  'gateway between regions': async () => {
    const [pp, sp] = [await freePort(), await freePort()];
    const p = await startMeshNode({ port: pp, region: 'eu', gateways: { us: [`127.0.0.1:${sp}`] } }, 'p');
    return [p, await startMeshNode({ port: sp, region: 'us', gateways: { eu: [`127.0.0.1:${pp}`] } }, 's')];
  },
};

describe('events between two nodes, in runs', () => {
  for (const [name, start] of Object.entries(topologies)) {
    it(`${name}: every receiver on the far node gets its events in order, a queue group each event once`, async () => {
      const [pubNode, subNode] = await start();
      nodes.push(pubNode, subNode);
      const subs = await client(subNode);
      clients.push(subs);
      const all = collect(subs, 'run.>');
      const onlyA = collect(subs, 'run.a');
      const group = collect(subs, 'run.c', { queue: 'g' });
      const limited: string[] = [];
      subs.subscribe('run.b', { max: 7, callback: (m: Msg) => limited.push(Buffer.from(m.data).toString()) });
      await subs.flush();
      const pub = await client(pubNode);
      clients.push(pub);
      // Interest has reached the publisher's node once a probe on each subscribed topic arrives.
      await until(async () => {
        pub.publish('run.probe', 'p');
        await pub.flush();
        return all.includes('p');
      }, 'interest at the publisher');
      const events = (): string[] => all.filter((x) => x !== 'p');
      const sent: string[] = [];
      await new Promise((r) => setTimeout(r, 100)); // the last probes arrive
      const outBefore = subNode.node.stats.msgsOut;
      for (let i = 0, k = 0; i < 3000; k++) {
        const topic = ['run.a', 'run.b', 'run.a', 'run.c', 'run.d'][k % 5]!;
        for (let j = 0; j < 1 + ((k * 7) % 40) && i < 3000; j++, i++) {
          pub.publish(topic, `${topic}:${i}`);
          sent.push(`${topic}:${i}`);
        }
        if (k % 13 === 0) await pub.flush();
      }
      await pub.flush();
      await until(() => events().length >= 3000, 'every event at the far node');
      await new Promise((r) => setTimeout(r, 100)); // room for a duplicate to arrive
      await subs.flush();
      expect(events()).toEqual(sent);
      expect(onlyA).toEqual(sent.filter((s) => s.startsWith('run.a:')));
      expect(group).toEqual(sent.filter((s) => s.startsWith('run.c:')));
      expect(limited).toEqual(sent.filter((s) => s.startsWith('run.b:')).slice(0, 7));
      // Counted once per frame sent: one per event to the connection for all its plain subscriptions, one per queue delivery.
      expect(subNode.node.stats.msgsOut - outBefore).toBe(events().length + group.length);
    });
  }
});
