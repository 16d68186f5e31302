import { afterEach, expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { spawnNode, type NodeProcess } from './processes.js';
import { until } from './mesh-helpers.js';

const procs: NodeProcess[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const p of procs.splice(0)) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});

it('runs one node per worker on a shared port, and routes between workers', async () => {
  const p = await spawnNode({ clusterPort: null, extra: ['--workers', '2'], readyText: 'peer link up' });
  procs.push(p);
  const byNode = new Map<string, Client>();
  for (let i = 0; i < 12 && byNode.size < 2; i++) {
    const c = await connect(p.url);
    clients.push(c);
    if (!byNode.has(c.info!.node)) byNode.set(c.info!.node, c);
  }
  // Connections are spread over the workers: two distinct node ids behind one port.
  expect(byNode.size).toBe(2);
  const [a, b] = [...byNode.values()];
  const got: string[] = [];
  b!.subscribe('w.>', { callback: (m) => got.push(Buffer.from(m.data).toString()) });
  await b!.flush();
  // Interest crosses the loopback link between the workers; publish until it has.
  let i = 0;
  await until(() => {
    a!.publish('w.x', String(i++));
    return got.length > 0;
  }, 'first event across workers');
  const start = i;
  for (let k = 0; k < 50; k++) a!.publish('w.x', String(i++));
  await a!.flush();
  await until(() => got.includes(String(i - 1)), 'events across workers');
  const tail = got.slice(got.indexOf(String(start)));
  expect(tail).toEqual(Array.from({ length: 50 }, (_, k) => String(start + k)));
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
}, 60_000);
