// A node's heap per subscription, and what holds it (issue #17, bench/README.md "Memory per subscription, third pass"):
//
//   node --expose-gc bench/sub-memory.mjs CHECKOUT [N] [SNAPSHOT_FILE]
//
// Starts CHECKOUT's node (core startNode, no HTTP API) in this process and, in a child process,
// N (default 100,000) subscriptions to the bench's filler patterns (literal and wildcard, as the
// `subs-100k` scenario adds them: 5,000 per SDK connection). Prints the growth of the heap
// (after two full GCs) and of RSS per subscription and, with SNAPSHOT_FILE, writes a heap
// snapshot and prints its 12 largest kinds of object by bytes, per subscription. Bounded: 120 s.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';

const [root, nS, snapshot] = process.argv.slice(2);
const N = Number(nS ?? 100_000);
const fillerPattern = (i) => [`bench.events.y${i}`, `bench.*.y${i}`, `*.events.z${i}`, `bench.events.x.${i}.>`][i % 4];
setTimeout(() => { console.error('sub-memory: gave up after 120 s'); process.exit(1); }, 120_000).unref();

if (process.env.CHILD) {
  const { connect } = await import(`${root}/sdk/dist/index.js`);
  const clients = [];
  for (let i = 0; i < Math.ceil(N / 5000); i++) clients.push(await connect(process.env.URL));
  process.send('connected');
  process.once('message', async () => {
    for (let i = 0; i < N; i++) clients[i % clients.length].subscribe(fillerPattern(i), { callback: () => {} });
    await Promise.all(clients.map((c) => c.flush()));
    process.send('filled');
  });
} else {
  if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc');
  const { startNode, silentLogger } = await import(`${root}/core/dist/index.js`);
  const node = await startNode({ port: 0, logger: silentLogger });
  const child = fork(new URL(import.meta.url).pathname, process.argv.slice(2), { env: { ...process.env, CHILD: '1', URL: `127.0.0.1:${node.port}` } });
  const next = () => new Promise((r) => child.once('message', r));
  const settle = async () => {
    await new Promise((r) => setTimeout(r, 500));
    global.gc();
    global.gc();
    return process.memoryUsage();
  };
  await next();
  const before = await settle();
  child.send('go');
  await next();
  const after = await settle();
  const per = (k) => ((after[k] - before[k]) / N).toFixed(0);
  console.log(`${N} subscriptions (table ${node.table.size}): heap ${per('heapUsed')} B, RSS ${per('rss')} B each`);
  if (snapshot) {
    const f = writeHeapSnapshot(snapshot);
    const s = JSON.parse(readFileSync(f, 'utf8'));
    const fields = s.snapshot.meta.node_fields;
    const types = s.snapshot.meta.node_types[0];
    const [W, it, iname, isz] = [fields.length, fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
    const kinds = new Map();
    for (let i = 0; i < s.nodes.length; i += W) {
      const t = types[s.nodes[i + it]];
      const kind = t.includes('string') ? '(strings)' : t === 'object' || t === 'closure' ? s.strings[s.nodes[i + iname]] : `(${t})`;
      const k = kinds.get(kind) ?? [0, 0];
      k[0]++;
      k[1] += s.nodes[i + isz];
      kinds.set(kind, k);
    }
    for (const [kind, [n, bytes]] of [...kinds].sort((a, b) => b[1][1] - a[1][1]).slice(0, 12)) {
      console.log(`${(bytes / N).toFixed(1).padStart(8)} B/sub ${String(n).padStart(8)} × ${kind}`);
    }
  }
  child.kill();
  await node.close();
  process.exit(0);
}
