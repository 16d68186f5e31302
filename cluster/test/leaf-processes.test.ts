import { expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { nodeKit, type NodeProcess, until } from '@meshbus/testkit';

/**
 * Issue #18, leaf nodes with real `meshbus start` processes: two hubs in a
 * full mesh, two leaves (`--mesh leaf`) with both hubs as seeds.
 * Events, wildcards and request/reply cross leaf → hub → hub → leaf; then the
 * hub of the subscribing leaf is killed with SIGKILL and the leaf fails over:
 * events flow again, in order per publisher, without duplicates.
 */
// Processes are killed with SIGKILL after each test (some already were, by the test), clients closed first.
const fx = nodeKit();
const spawn = (args: Parameters<typeof fx.spawnNode>[0]): Promise<NodeProcess> => fx.spawnNode(args, 'SIGKILL');

async function cli(p: NodeProcess): Promise<Client> {
  return fx.track(await connect(p.url, { reconnectBackoff: { base: 50, max: 300 } }));
}

it('routes across leaves and hubs of real processes, and a leaf fails over when its hub is killed', async () => {
  const a = await spawn({});
  const b = await spawn({ seeds: [`127.0.0.1:${a.clusterPort}`] });
  await until(() => b.log.join('').includes('peer link up'), 'the hubs to link', 15_000);
  const hubs = [`127.0.0.1:${a.clusterPort}`, `127.0.0.1:${b.clusterPort}`];
  const edge = await spawn({ seeds: hubs, extra: ['--mesh', 'leaf'] });
  const roaming = await spawn({ seeds: hubs, extra: ['--mesh', 'leaf'] });
  for (const l of [edge, roaming]) await until(() => l.log.join('').includes('"hub":true'), 'a leaf to link to its hub', 15_000);

  // A responder on one leaf, a requester on the other.
  const responder = await cli(edge);
  responder.subscribe('svc.time', { callback: (m) => m.respond('now') });
  await responder.flush();
  const sub = await cli(roaming);
  const got: number[] = [];
  sub.subscribe('ticks.*', { callback: (m) => got.push(Number(Buffer.from(m.data).toString())) });
  await sub.flush();

  const requester = await cli(roaming);
  let reply = '';
  await until(async () => {
    reply = await requester.request('svc.time', '', { timeout: 500 }).then((m) => Buffer.from(m.data).toString(), () => '');
    return reply === 'now';
  }, 'a reply from the other leaf', 15_000);

  const pub = await cli(edge);
  let seq = 0;
  const timer = setInterval(() => pub.publish('ticks.edge', String(seq++)), 5);
  try {
    await until(() => got.length > 20, 'events from leaf to leaf', 15_000);
    // Kill whichever hub the roaming leaf is on (its log names the address it linked to);
    // the edge leaf, if it was on the same hub, fails over too.
    const linkedTo = roaming.log.join('').includes(`"address":"127.0.0.1:${a.clusterPort}"`) ? a : b;
    linkedTo.child.kill('SIGKILL');
    const killedAt = Date.now();
    const seqAtKill = seq;
    await until(() => got.some((n) => n > seqAtKill), 'events again after the hub died', 20_000);
    console.log(`leaf failover: events resumed ${Date.now() - killedAt} ms after SIGKILL of the hub`);
    await until(() => got.some((n) => n > seqAtKill + 20), 'events flowing after the failover', 20_000);
  } finally {
    clearInterval(timer);
  }
  expect(got).toEqual([...got].sort((x, y) => x - y));
  expect(new Set(got).size).toBe(got.length);
}, 90_000);
