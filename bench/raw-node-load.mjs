// Node CPU per delivered event under raw-socket load (issue #17, bench/README.md "Profile").
//
//   node bench/raw-node-load.mjs CHECKOUT SCENARIO PAYLOAD EVENTS_PER_PUBLISHER
//   SCENARIO: 1to1 | fanout10 | m2m4x4 | 1to1-2nodes | fanout-2nodes
//   PROF=DIR also writes a --cpu-prof profile per node into DIR.
//   NODE_FLAGS="--trace-gc" adds Node flags to every node (their output goes to this terminal).
//   TOPICS=N: the publishers cycle N topics (bench.raw.t<i>), event by event; subscribers take bench.raw.*.
//   RELAY=1 runs the ceiling (bench/dist/relay-server.js, bench/README "The ceiling") instead of
//   a node: 1to1 only, the bare read-and-write cost in Node beside the node's.
//
// Starts `meshbus start` node(s) from CHECKOUT (its bin/ and proto/dist), connects raw TCP
// clients (HELLO, SUB; no SDK: the clients parse nothing, so they take as little of the 2 cores
// as possible), publishes EVENTS pre-encoded PUB frames per publisher in 256 KiB writes, waits
// until every subscriber has every byte, and prints one JSON line: node CPU (user + sys of all
// nodes, /proc, 10 ms ticks) between the first write and the last byte received, divided by
// the events delivered (`perNode`: each node's share, in the order started: the publishers' node first). Run it alternately on two checkouts (A/B) and compare medians: it is
// the node's own cost, not a rate to compare with other brokers. Bounded: 60 s at most.
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { readFileSync } from 'node:fs';
const [root, scen, sizeS, nS] = process.argv.slice(2);
const { encodeFrame, encodeBody, FrameType } = await import(`${root}/proto/dist/index.js`);
const size = Number(sizeS), N = Number(nS);
const shape = { '1to1': [1, 1, 1], '1to1-2nodes': [1, 1, 2], fanout10: [1, 10, 1], m2m4x4: [4, 4, 1], 'fanout-2nodes': [1, 10, 2] }[scen];
const [pubs, subs, nodes] = shape;
const freePort = () => new Promise((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const ports = [], cports = [], procs = [];
for (let i = 0; i < nodes; i++) { ports.push(await freePort()); cports.push(await freePort()); }
for (let i = 0; i < nodes; i++) {
  const prof = [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.PROF] : []), ...(process.env.NODE_FLAGS?.split(' ').filter(Boolean) ?? [])];
  const a = process.env.RELAY
    ? [...prof, `${root}/bench/dist/relay-server.js`, '--port', String(ports[i])]
    : [...prof, `${root}/bin/meshbus.js`, 'start', '--port', String(ports[i]), '--http-port', '0', '--log-level', 'warn'];
  if (nodes > 1) { a.push('--cluster-port', String(cports[i]), '--name', `n${i}`); if (i > 0) a.push('--seeds', `127.0.0.1:${cports[0]}`); }
  procs.push(spawn(process.env.WRAP ? process.env.WRAP.split(' ')[0] : process.execPath, process.env.WRAP ? [...process.env.WRAP.split(' ').slice(1), process.execPath, ...a] : a, { stdio: process.env.NODE_FLAGS ? ['ignore', 'inherit', 'inherit'] : 'ignore', env: { ...process.env, MESHBUS_MAX_CONNECTIONS_PER_IP: '100000' } }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu = (p) => { const f = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10e6; };
async function open(port) {
  for (let k = 0; k < 200; k++) {
    try {
      const s = await new Promise((res, rej) => { const s = connect(port, '127.0.0.1', () => res(s)); s.on('error', rej); });
      s.setNoDelay(true);
      s.write(encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], name: 'raw' }) }));
      await new Promise((res) => s.once('data', res));
      return s;
    } catch { await sleep(50); }
  }
  throw new Error('no node');
}
const topic = 'bench.raw.topic';
const TOPICS = Number(process.env.TOPICS ?? 1);
const subNode = nodes > 1 ? 1 : 0;
const subSocks = [];
for (let i = 0; i < subs; i++) {
  const s = await open(ports[subNode]);
  s.write(encodeFrame({ type: FrameType.SUB, topic: TOPICS > 1 ? 'bench.raw.*' : topic, correlation: 1, payload: encodeBody({}) }));
  subSocks.push(s);
}
const pubSocks = [];
for (let i = 0; i < pubs; i++) pubSocks.push(await open(ports[0]));
await sleep(nodes > 1 ? 1500 : 300);
const frames = Array.from({ length: TOPICS }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: TOPICS > 1 ? `bench.raw.t${String(i).padStart(5, '0')}` : topic, payload: new Uint8Array(size).fill(7) }));
const frame = frames[0];
const per = Math.max(1, Math.floor(256 * 1024 / frame.length));
// Topics of one length, so every frame is frame.length bytes; a block starts where the last left off in the cycle.
const blocks = Array.from({ length: TOPICS > 1 ? Math.min(TOPICS, 64) : 1 }, (_, b) => Buffer.concat(Array.from({ length: per }, (_, k) => frames[(b * per + k) % TOPICS])));
let nextBlock = 0;
const expect = frame.length * N * pubs;
let done = 0;
const got = subSocks.map(() => 0);
const allDone = new Promise((res) => subSocks.forEach((s, i) => { s.removeAllListeners('data'); s.on('data', (c) => { got[i] += c.length; if (got[i] >= expect && got[i] - c.length < expect && ++done === subs) res(); }); }));
const n0 = procs.map(cpu); const c0 = n0.reduce((a, c) => a + c, 0); const t0 = process.hrtime.bigint();
await Promise.all(pubSocks.map(async (s) => {
  let left = N;
  while (left > 0) {
    const k = Math.min(per, left); left -= k;
    const block = blocks[nextBlock++ % blocks.length];
    const ok = s.write(k === per ? block : block.subarray(0, k * frame.length));
    if (!ok) await new Promise((r) => s.once('drain', r));
  }
}));
const timeout = sleep(60000).then(() => 'timeout');
const r = await Promise.race([allDone, timeout]);
const n1 = procs.map(cpu); const c1 = n1.reduce((a, c) => a + c, 0); const t1 = process.hrtime.bigint();
const deliveries = N * pubs * subs;
console.log(JSON.stringify({ scen, size, r: r ?? 'ok', nsPerEvent: Math.round((c1 - c0) / deliveries), perNode: n1.map((c, i) => Math.round((c - n0[i]) / deliveries)), rate: Math.round(deliveries / (Number(t1 - t0) / 1e9)), got: got.map((g) => Math.round(g / frame.length)).slice(0, 3) }));
for (const s of [...subSocks, ...pubSocks]) s.destroy();
for (const p of procs) p.kill(process.env.PROF ? 'SIGINT' : 'SIGKILL'); if (process.env.PROF) await sleep(1500);
process.exit(0);
