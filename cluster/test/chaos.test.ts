/**
 * CI-sized chaos run (bench/src/chaos-mesh.ts; the long run is
 * `node bench/dist/chaos.js`): 3 real node processes, 3 publishers and 3
 * subscribers through the SDK with every node in their server list, and in
 * ~45 s one fault of each kind: SIGKILL + restart, peer link dropped, peer
 * link stalled (TCP proxy between two nodes' cluster ports).
 */
import { expect, it } from 'vitest';
import { runChaos, summarize } from '../../bench/src/chaos-mesh.js';

it('survives SIGKILL, dropped and stalled peer links: no crash, bounded memory, events resume, no duplicates', async () => {
  const r = await runChaos({ nodes: 3, durationMs: 42_000, faultEveryMs: 10_000, faultMs: 3_000, rate: 50, faults: ['kill', 'drop', 'stall'], log: (l) => console.log(l) });
  console.log(summarize(r));
  expect(r.unexpectedExits).toEqual([]);
  expect(r.finalExitCodes).toEqual([0, 0, 0]);
  expect(r.faults.length).toBeGreaterThanOrEqual(3);
  expect(r.faultCounts.kill).toBeGreaterThanOrEqual(1);
  expect(r.faultCounts.drop + r.faultCounts.stall).toBeGreaterThanOrEqual(2);
  // Events flow again to every subscriber from every publisher soon after each fault heals.
  expect(r.maxFlowAfterHealMs).not.toBeNull();
  expect(r.maxFlowAfterHealMs!).toBeLessThan(20_000);
  // At-most-once: gaps allowed during faults, never a duplicate.
  expect(r.duplicates).toBe(0);
  expect(r.received).toBeGreaterThan(r.expected / 2);
  for (const mb of r.peakRssMb) expect(mb).toBeLessThan(400);
  // Per-publisher order: violated after a restart by the peer-link flapping
  // reported in RELIABILITY.md ("Findings"); counted, not failed, until fixed.
  if (r.reordered > 0) console.warn(`KNOWN ISSUE: ${r.reordered} deliveries out of per-publisher order`);
}, 90_000);
