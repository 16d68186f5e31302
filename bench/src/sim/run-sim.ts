/**
 * npm run sim -w @meshbus/bench [-- --sizes 10,25,50] [--topologies full,partial,leaf]
 *   [--delay ms] [--rate events/s] [--duration ms] [--out dir] [--chart file.svg]
 *
 * Runs the many-node simulation (mesh-sim.ts) for every topology and size,
 * prints the table, and writes <out>/mesh-sim.json and the chart (default
 * bench/mesh-sim.svg, the one bench/README.md shows).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { machine } from '../report.js';
import { RESULTS_DIR } from '../run.js';
import { simChart, simTable, simulate, type SimResult, type Topology } from './mesh-sim.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const sizes = (arg('sizes') ?? '10,25,50').split(',').map(Number);
  const topologies = (arg('topologies') ?? 'full,partial,leaf').split(',') as Topology[];
  const delayMs = Number(arg('delay') ?? 2);
  const out = arg('out') ?? RESULTS_DIR;
  const chart = arg('chart') ?? join(RESULTS_DIR, '..', 'mesh-sim.svg');
  const results: SimResult[] = [];
  for (const n of sizes) {
    for (const topology of topologies) {
      results.push(await simulate({ topology, nodes: n, delayMs, rate: Number(arg('rate') ?? 200), durationMs: Number(arg('duration') ?? 2000), log: (l) => console.log(l) }));
    }
  }
  const run = { date: new Date().toISOString(), loadavg: loadavg().map((x) => Math.round(x * 100) / 100), machine: machine(), delayMs, results };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'mesh-sim.json'), JSON.stringify(run, null, 2));
  writeFileSync(chart, simChart(results, `meshbus mesh simulation, ${run.date.slice(0, 10)}, load ${run.loadavg[0]}, ${delayMs} ms per link`));
  console.log(`\n${simTable(results)}\n\nwrote ${join(out, 'mesh-sim.json')} and ${chart}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
