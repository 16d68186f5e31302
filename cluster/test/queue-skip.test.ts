import { afterEach, expect, it } from 'vitest';
import type { Client } from '@meshbus/sdk';
import { until } from '@meshbus/testkit';
import { client, collect, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});

it('a publisher with echo off that is its group\'s only member on its node: the group gets each event once, from a member on another node', async () => {
  const a = await startMeshNode({}, 'a');
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  nodes.push(b);
  const r = await client(b);
  clients.push(r);
  const member = collect(r, 'work', { queue: 'g' });
  const plain = collect(r, 'work');
  await r.flush();
  const p = await client(a, { echo: false });
  clients.push(p);
  const own = collect(p, 'work', { queue: 'g' });
  await p.flush();
  await until(() => a.node.table.size >= 3, 'b\'s interest at a');
  for (let i = 0; i < 10; i++) p.publish('work', String(i));
  await p.flush();
  await until(() => plain.length >= 10, 'the plain copies');
  await new Promise((res) => setTimeout(res, 100));
  expect(own).toEqual([]);
  expect(member).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
});
