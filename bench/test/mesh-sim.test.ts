import { expect, it } from 'vitest';
import { hubCount, simTable, simulate, type SimResult } from '../src/sim/mesh-sim.js';

/**
 * The many-node simulation at CI size (issue #18): 6 real node processes per
 * topology behind delay proxies. Behaviour, not speed: every event reaches
 * every subscriber, a joined node's interest reaches every node and leaves
 * again when it is killed, and the topologies have the link counts they
 * promise. `npm run sim -w @meshbus/bench` runs 10, 25 and 50 nodes.
 */
it('runs full mesh, partial mesh and hubs + leaves of 6 processes and measures each', async () => {
  const rs: SimResult[] = [];
  for (const topology of ['full', 'partial', 'leaf'] as const) rs.push(await simulate({ topology, nodes: 6, delayMs: 1, durationMs: 600, rate: 100, subscribers: 3 }));
  console.log(simTable(rs));
  for (const r of rs) {
    expect(r.delivered).toBe(r.expected);
    expect(r.expected).toBeGreaterThan(0);
    expect(r.joinMs).toBeGreaterThan(0);
    expect(r.deathMs).toBeGreaterThan(0);
    expect(r.interestBytesPerSub).toBeGreaterThan(0);
    expect(r.bytesPerDelivered).toBeGreaterThan(0);
  }
  const [full, partial, leaf] = rs as [SimResult, SimResult, SimResult];
  expect(full.linksMax).toBe(5);
  expect(partial.linksMax).toBeLessThan(5);
  // A leaf has one link (its hub); a hub has the other hubs and its leaves.
  expect(leaf.hubs).toBe(hubCount(6));
  expect(leaf.linksMean).toBeLessThan(full.linksMean);
}, 180_000);
