import { expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { nodeKit, until, type NodeProcess } from '@meshbus/testkit';

const fx = nodeKit();
const spawnNode = (args: Parameters<typeof fx.spawnNode>[0]): Promise<NodeProcess> => fx.spawnNode(args, 'SIGTERM');

it('runs one node per worker on a shared port, and routes between workers', async () => {
  const p = await spawnNode({ clusterPort: null, extra: ['--workers', '2'], readyText: 'peer link up' });
  const byNode = new Map<string, Client>();
  for (let i = 0; i < 12 && byNode.size < 2; i++) {
    const c = await connect(p.url);
    fx.track(c);
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
