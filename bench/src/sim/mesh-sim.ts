/**
 * The many-node simulation (issue #18): N real node processes (sim-node.ts)
 * as a full mesh, a partial mesh or hubs + leaves, every link behind a
 * DelayProxy that adds a one-way latency. For each topology and size it
 * measures links per node, time to converge after a node joins and after one
 * is killed (SIGKILL), interest-propagation bytes per new subscription,
 * bytes on the links per delivered event, delivery latency p50/p99, and node
 * RSS. Runs from `npm run sim -w @meshbus/bench` (see bench/README.md).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Client } from '@meshbus/sdk';
import { freePort } from '@meshbus/core';
import type { MeshMode } from '@meshbus/cluster';
import { newHistogram, summarize, type LatencySummary } from '../histogram.js';
import { sleep } from '../proc.js';
import type { SimNodeConfig, SimReply, SimRequest, SimStats } from './sim-node.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled node script, whether this module runs from dist/ or (under vitest) from src/. */
const NODE_SCRIPT = existsSync(join(here, 'sim-node.js')) ? join(here, 'sim-node.js') : join(here, '..', '..', 'dist', 'sim', 'sim-node.js');

export type Topology = 'full' | 'partial' | 'leaf';

export interface SimOptions {
  topology: Topology;
  nodes: number;
  /** One-way latency per link, ms. Default 2. */
  delayMs?: number;
  /** Events per second of the latency phase's publisher. Default 200. */
  rate?: number;
  /** Length of the latency phase, ms. Default 2,000. */
  durationMs?: number;
  /** Subscribers of the latency phase, spread over the nodes. Default 4. */
  subscribers?: number;
  /** Peer ping interval, ms (death of a silent peer is noticed within ~3 of them). Default 1,000. */
  pingInterval?: number;
  log?: (line: string) => void;
}

export interface SimResult {
  topology: Topology;
  nodes: number;
  /** Hubs (leaf topology). */
  hubs?: number;
  delayMs: number;
  linksMean: number;
  linksMax: number;
  /** ms from a new node's start until every node knows its subscription. */
  joinMs: number;
  /** ms from SIGKILL of that node until no node still routes to it. */
  deathMs: number;
  /** INTEREST bytes sent, mesh-wide, per new subscription. */
  interestBytesPerSub: number;
  /** Bytes on the links per event delivered to a subscriber (pings and gossip in the window included). */
  bytesPerDelivered: number;
  delivered: number;
  expected: number;
  /** Microseconds. */
  latency: LatencySummary;
  rssMeanMB: number;
}

interface SimProc {
  child: ChildProcess;
  cfg: SimNodeConfig;
  id: string;
  clientPort: number;
  addr: string;
}

/** Which nodes each node dials, and in which mode. */
function plan(topology: Topology, n: number): { mode: MeshMode; seeds: number[] }[] {
  const out: { mode: MeshMode; seeds: number[] }[] = [];
  const hubs = hubCount(n);
  for (let i = 0; i < n; i++) {
    if (topology === 'full') out.push({ mode: 'full', seeds: i === 0 ? [] : [0] });
    // A partial mesh with cycles: each node dials the one before it and its "parent" in a binary tree.
    else if (topology === 'partial') out.push({ mode: 'partial', seeds: i === 0 ? [] : [...new Set([i - 1, Math.floor((i - 1) / 2)])] });
    else if (i < hubs) out.push({ mode: 'full', seeds: i === 0 ? [] : [0] });
    else out.push({ mode: 'leaf', seeds: [(i - hubs) % hubs, (i - hubs + 1) % hubs] });
  }
  return out;
}

/** Hubs of the leaf topology: one per 10 nodes, at least 2. */
export function hubCount(n: number): number {
  return Math.max(2, Math.ceil(n / 10));
}

function request(p: SimProc, m: SimRequest): Promise<SimStats> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`node ${p.cfg.name} did not answer`)), 30_000);
    const on = (r: SimReply): void => {
      if (!('stats' in r)) return;
      clearTimeout(t);
      p.child.off('message', on);
      resolve(r);
    };
    p.child.on('message', on);
    p.child.send(m);
  });
}

const stats = (ps: SimProc[], topic?: string): Promise<SimStats[]> => Promise.all(ps.map((p) => request(p, { op: 'stats', topic })));

async function until(cond: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > limitMs) throw new Error(`mesh-sim: timed out waiting for ${what}`);
    await sleep(20);
  }
  return performance.now() - start;
}

function spawnSim(cfg: SimNodeConfig): Promise<SimProc> {
  const child = fork(NODE_SCRIPT, [], { env: { ...process.env, MESHBUS_SIM: JSON.stringify(cfg) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sim node ${cfg.name} exited (${code})`)));
    child.once('message', (m: SimReply) => {
      if ('ready' in m) resolve({ child, cfg, id: m.id, clientPort: m.clientPort, addr: `127.0.0.1:${m.proxyPort}` });
    });
  });
}

async function stopAll(ps: SimProc[]): Promise<void> {
  await Promise.all(
    ps.map(
      (p) =>
        new Promise<void>((r) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return r();
          const t = setTimeout(() => p.child.kill('SIGKILL'), 3000);
          p.child.once('exit', () => {
            clearTimeout(t);
            r();
          });
          p.child.send({ op: 'stop' } satisfies SimRequest);
        }),
    ),
  );
}

/** Runs one topology at one size; every process it started is stopped, whatever happens. */
export async function simulate(o: SimOptions): Promise<SimResult> {
  const delayMs = o.delayMs ?? 2;
  const pingInterval = o.pingInterval ?? 1000;
  const log = o.log ?? (() => undefined);
  const p = plan(o.topology, o.nodes);
  // Every port of every process (each node's proxy and cluster port, the
  // joining node's too) is picked here, by one picker, so they are distinct:
  // nodes that picked their own cluster ports could pick another's proxy
  // port before it was bound ("cluster port ... already in use" in CI).
  const count = p.length + 1;
  const ports: number[] = [];
  while (ports.length < 2 * count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const clusterPort = (i: number): number => ports[count + i]!;
  const procs: SimProc[] = [];
  const clients: Client[] = [];
  try {
    const started = await Promise.all(
      p.map((x, i) => spawnSim({ name: `${o.topology}-${i}`, mode: x.mode, seeds: x.seeds.map((s) => `127.0.0.1:${ports[s]}`), proxyPort: ports[i]!, clusterPort: clusterPort(i), delayMs, pingInterval })),
    );
    procs.push(...started);
    log(`${o.topology} ${o.nodes}: ${procs.length} processes up`);

    // Formed: a subscription on the last node is known everywhere.
    const probe = await connect(`127.0.0.1:${procs[procs.length - 1]!.clientPort}`);
    clients.push(probe);
    probe.subscribe('sim.formed', { callback: () => undefined });
    await probe.flush();
    await until(async () => (await stats(procs, 'sim.formed')).every((s) => s.interested), 'the mesh to form');
    const formed = await stats(procs);
    const links = formed.map((s) => s.links);

    // Interest propagation: 10 new subscriptions on the last node, bytes mesh-wide until all know them.
    const before = formed.reduce((n, s) => n + s.interestBytesOut, 0);
    for (let k = 0; k < 10; k++) probe.subscribe(`sim.interest.${k}`, { callback: () => undefined });
    await probe.flush();
    await until(async () => (await stats(procs, 'sim.interest.9')).every((s) => s.interested), 'ten subscriptions to propagate');
    await sleep(200);
    const interestBytesPerSub = ((await stats(procs)).reduce((n, s) => n + s.interestBytesOut, 0) - before) / 10;

    // Latency and bytes: a paced publisher on node 0, subscribers spread over the other nodes (leaves, in the leaf topology).
    const subs = o.subscribers ?? 4;
    const hist = newHistogram();
    let delivered = 0;
    for (let k = 0; k < subs; k++) {
      const at = procs[procs.length - 1 - Math.floor((k * (procs.length - 1)) / subs)]!;
      const c = await connect(`127.0.0.1:${at.clientPort}`);
      clients.push(c);
      c.subscribe('sim.lat', {
        callback: (m) => {
          const sent = new DataView(m.data.buffer, m.data.byteOffset, 8).getFloat64(0);
          hist.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)));
          delivered++;
        },
      });
      await c.flush();
    }
    await until(async () => (await request(procs[0]!, { op: 'stats', topic: 'sim.lat' })).interested, 'the subscribers\' interest at the publisher');
    await sleep(300);
    const pub = await connect(`127.0.0.1:${procs[0]!.clientPort}`);
    clients.push(pub);
    const rate = o.rate ?? 200;
    const bytesBefore = (await stats(procs)).reduce((n, s) => n + s.proxyBytes, 0);
    let sent = 0;
    const durationMs = o.durationMs ?? 2000;
    const t0 = performance.now();
    while (performance.now() - t0 < durationMs) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      for (; sent < due; sent++) {
        const b = new Uint8Array(64);
        new DataView(b.buffer).setFloat64(0, performance.now());
        pub.publish('sim.lat', b);
      }
      await sleep(2);
    }
    await pub.flush();
    await until(async () => delivered >= sent * subs, 'every event at every subscriber', 10_000).catch(() => 0);
    const bytesAfter = (await stats(procs)).reduce((n, s) => n + s.proxyBytes, 0);

    // Join: a new node with a subscription; converged when every node knows it.
    const last = procs.length;
    const joinPlan = o.topology === 'full' ? { mode: 'full' as const, seeds: [0] } : o.topology === 'partial' ? { mode: 'partial' as const, seeds: [last - 1] } : { mode: 'leaf' as const, seeds: [0, 1] };
    const joinPort = ports[count - 1]!;
    const joined = await spawnSim({ name: `${o.topology}-join`, mode: joinPlan.mode, seeds: joinPlan.seeds.map((s) => procs[s]!.addr), proxyPort: joinPort, clusterPort: clusterPort(count - 1), delayMs, pingInterval });
    const joinStart = performance.now();
    const jc = await connect(`127.0.0.1:${joined.clientPort}`, { reconnect: false });
    jc.subscribe('sim.join', { callback: () => undefined });
    await jc.flush();
    await until(async () => (await stats(procs, 'sim.join')).every((s) => s.interested), 'the joined node\'s interest everywhere');
    const joinMs = performance.now() - joinStart;

    // Death: SIGKILL of the joined node; converged when no node still routes to it.
    const rss = (await stats(procs)).map((s) => s.rss);
    joined.child.kill('SIGKILL');
    const deathStart = performance.now();
    await jc.close().catch(() => undefined);
    await until(async () => (await stats(procs, 'sim.join')).every((s) => !s.interested), 'the dead node\'s interest to be gone everywhere');
    const deathMs = performance.now() - deathStart;

    const result: SimResult = {
      topology: o.topology,
      nodes: o.nodes,
      ...(o.topology === 'leaf' ? { hubs: hubCount(o.nodes) } : {}),
      delayMs,
      linksMean: Math.round((links.reduce((a, b) => a + b, 0) / links.length) * 10) / 10,
      linksMax: Math.max(...links),
      joinMs: Math.round(joinMs),
      deathMs: Math.round(deathMs),
      interestBytesPerSub: Math.round(interestBytesPerSub),
      bytesPerDelivered: delivered > 0 ? Math.round((bytesAfter - bytesBefore) / delivered) : 0,
      delivered,
      expected: sent * subs,
      latency: summarize(hist),
      rssMeanMB: Math.round(rss.reduce((a, b) => a + b, 0) / rss.length / 2 ** 20),
    };
    log(
      `${o.topology} ${o.nodes}: links ${result.linksMean} (max ${result.linksMax}), join ${result.joinMs} ms, death ${result.deathMs} ms, ` +
        `interest ${result.interestBytesPerSub} B/sub, ${result.bytesPerDelivered} B/delivered, p50 ${result.latency.p50} µs p99 ${result.latency.p99} µs, ${result.delivered}/${result.expected}`,
    );
    return result;
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await stopAll(procs);
  }
}

/** The report table (markdown). */
export function simTable(rs: SimResult[]): string {
  const head = '| topology | nodes | links/node (max) | join (ms) | death (ms) | interest B/sub | link B/delivered | p50 (µs) | p99 (µs) | delivered | RSS/node (MB) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const rows = rs.map(
    (r) =>
      `| ${r.topology}${r.hubs ? ` (${r.hubs} hubs)` : ''} | ${r.nodes} | ${r.linksMean} (${r.linksMax}) | ${r.joinMs} | ${r.deathMs} | ${r.interestBytesPerSub} | ${r.bytesPerDelivered} | ${r.latency.p50} | ${r.latency.p99} | ${r.delivered}/${r.expected} | ${r.rssMeanMB} |`,
  );
  return [head, ...rows].join('\n');
}

/** A small SVG: links per node and join time against the number of nodes, one line per topology. */
export function simChart(rs: SimResult[], title: string): string {
  const W = 720;
  const H = 260;
  const panel = (x0: number, key: 'linksMean' | 'joinMs', label: string): string => {
    const xs = [...new Set(rs.map((r) => r.nodes))].sort((a, b) => a - b);
    const maxY = Math.max(1, ...rs.map((r) => r[key]));
    const px = (n: number): number => x0 + 40 + ((n - xs[0]!) / Math.max(1, xs[xs.length - 1]! - xs[0]!)) * 280;
    const py = (v: number): number => 220 - (v / maxY) * 170;
    const colors: Record<Topology, string> = { full: '#c0392b', partial: '#2980b9', leaf: '#27ae60' };
    const lines = (['full', 'partial', 'leaf'] as const).map((t) => {
      const pts = rs.filter((r) => r.topology === t).sort((a, b) => a.nodes - b.nodes);
      if (pts.length === 0) return '';
      const d = pts.map((r, i) => `${i === 0 ? 'M' : 'L'}${px(r.nodes).toFixed(1)},${py(r[key]).toFixed(1)}`).join(' ');
      return `<path d="${d}" fill="none" stroke="${colors[t]}" stroke-width="2"/>` + pts.map((r) => `<circle cx="${px(r.nodes).toFixed(1)}" cy="${py(r[key]).toFixed(1)}" r="3" fill="${colors[t]}"><title>${t} ${r.nodes}: ${r[key]}</title></circle>`).join('');
    });
    const ticks = xs.map((n) => `<text x="${px(n).toFixed(1)}" y="238" font-size="10" text-anchor="middle">${n}</text>`).join('');
    return `<text x="${x0 + 40}" y="40" font-size="12">${label} (max ${maxY})</text><line x1="${x0 + 40}" y1="220" x2="${x0 + 320}" y2="220" stroke="#888"/>${ticks}${lines.join('')}`;
  };
  const legend = (['full', 'partial', 'leaf'] as const).map((t, i) => `<text x="${40 + i * 120}" y="256" font-size="11" fill="${{ full: '#c0392b', partial: '#2980b9', leaf: '#27ae60' }[t]}">${t}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 10}" font-family="sans-serif"><text x="10" y="18" font-size="13">${title}</text>${panel(0, 'linksMean', 'links per node')}${panel(360, 'joinMs', 'join convergence, ms')}${legend}</svg>`;
}
