import { afterEach, expect, it } from 'vitest';
import type { Client } from '@meshbus/sdk';
import { formatTrace, traceEvent } from '@meshbus/cli';
import { until } from '@meshbus/testkit';
import { client, collect, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});

it('traces an event across a line A-B-C: three hops in order, with timings', async () => {
  const a = await startMeshNode({ mode: 'partial' }, 'A');
  nodes.push(a);
  const b = await startMeshNode({ mode: 'partial', seeds: [a.peerAddr] }, 'B');
  nodes.push(b);
  const c = await startMeshNode({ mode: 'partial', seeds: [b.peerAddr] }, 'C');
  nodes.push(c);
  await until(() => !!a.cluster.link(b.node.id) && !!b.cluster.link(c.node.id), 'line');
  const sub = await client(c);
  clients.push(sub);
  const got = collect(sub, 'orders.>');
  await sub.flush();
  await until(() => remoteInterest(a) >= 1, 'interest at A');
  const pub = await client(a);
  clients.push(pub);
  // The tracing client's _TRACE subscription must reach B and C before the event does.
  const { hops, id } = await traceEvent(pub, 'orders.new', Buffer.from('traced'), 500);
  expect(got).toEqual(['traced']);
  expect(hops.map((h) => h.name)).toEqual(['A', 'B', 'C']);
  expect(hops.map((h) => h.hops)).toEqual([0, 1, 2]);
  // Hop records name nodes, never a client (SPEC 10.9): "client", not "client <id>".
  expect(hops[0]!.from).toBe('client');
  expect(hops[0]!.to).toEqual([`peer ${b.node.id}`]);
  expect(hops[1]!.from).toBe(`peer ${a.node.id}`);
  expect(hops[1]!.to).toEqual([`peer ${c.node.id}`]);
  expect(hops[2]!.to).toEqual(['client']);
  for (const h of hops) expect(h.out).toBeGreaterThanOrEqual(h.in);
  expect(hops[1]!.in).toBeGreaterThanOrEqual(hops[0]!.in);
  expect(hops[2]!.in).toBeGreaterThanOrEqual(hops[1]!.in);
  const text = formatTrace('orders.new', id, hops);
  expect(text).toContain('3 node(s)');
  console.log(text);
});
