// Where a flush-paced 1 → 1 run spends its time, process by process (issue #17, bench/README.md
// "Two nodes at 16 B"). The harness's stream scenarios are a pipeline of single-threaded
// processes — publisher P, node A, (node B,) subscriber S — and their rate can be bound by
// CPU (the processes together use the machine's cores) or by latency (the flush round trip
// P → A → PONG → P waits for the scheduler). This run tells which: per process, CPU per
// event and involuntary context switches per batch; for the publisher, how long its
// publish loop and its PONG wait take per batch.
//
//   node bench/flush-pipeline.mjs CHECKOUT [meshbus|nats|relay] [NODES=2] [PAYLOAD=16] [SECONDS=4] [SPIN=0]
//
// CHECKOUT: a built meshbus checkout (its bin/ and sdk/dist; the nats npm client of this
// repo for nats; relay: the ceiling, bench/dist/relay-server.js with meshbus clients, NODES 1). NODES 1: P and S on one server; 2: P on A, S on B (meshbus: two
// `meshbus start` with cluster ports; nats: two nats-server with routes). SPIN > 0 runs a
// competing process busy SPIN of each 200 ms (1 = a whole core, as another suite on a
// shared machine would), and reports its CPU share. Batches as in the harness (batchFor:
// ~256 KiB, 16..1,000 events, then flush()); the first second is warm-up. Prints one JSON
// line: `rate` (events/s over the measured batches), `received` (events the subscriber got,
// warm-up included), `pongMs` / `publishMs` per batch
// (p50/p90/p99), and per process `cpuNs` (user+sys of every thread, /proc/PID/stat, 10 ms
// ticks), `mainNs` (its main thread, /proc/PID/sched, ns) per event and `preempted`
// (involuntary switches of the main thread per batch). The machine's load average is in
// `load`: on a shared machine, compare runs taken alternately. Bounded: SECONDS + ~10 s.
import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

const me = fileURLToPath(import.meta.url);
const TOPIC = 'bench.events.x';
const WARMUP_MS = 1000;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const batchFor = (payload) => Math.max(16, Math.min(1000, Math.floor((256 * 1024) / payload)));

/** A client with the harness's three calls, for either target. */
async function client(root, target, url) {
  if (target === 'nats') {
    const { connect } = (await import(pathToFileURL(`${fileURLToPath(new URL('..', import.meta.url))}node_modules/nats/index.js`).href)).default;
    const c = await connect({ servers: url, name: 'flush-pipeline' });
    return { publish: (t, d) => c.publish(t, d), flush: () => c.flush(), subscribe: (t, cb) => c.subscribe(t, { callback: (_e, m) => cb(m.data) }) };
  }
  const { connect } = await import(pathToFileURL(`${root}/sdk/dist/index.js`).href);
  const c = await connect(url, { name: 'flush-pipeline' });
  return { publish: (t, d) => c.publish(t, d), flush: () => c.flush(), subscribe: (t, cb) => c.subscribe(t, { callback: (m) => cb(m.data) }) };
}

/** Child roles: 'sub' counts events (reading the payload like the harness); 'pub' publishes batches and flushes until told the end. */
async function child(role, root, target, url, payload) {
  const c = await client(root, target, url);
  if (role === 'sub') {
    let n = 0;
    c.subscribe(TOPIC, (d) => {
      if (d[0] === 1) n++;
    });
    await c.flush();
    process.on('message', () => process.send({ n }));
    return process.send({ ready: true });
  }
  await c.flush();
  process.once('message', async ({ t0, end }) => {
    const pool = Array.from({ length: batchFor(payload) }, () => Buffer.alloc(payload, 0x61));
    const batches = [];
    while (now() < end) {
      const ts = now();
      for (const b of pool) {
        b[0] = 1;
        c.publish(TOPIC, b);
      }
      const tw = now();
      await c.flush();
      if (ts >= t0 + WARMUP_MS) batches.push([ts, tw, now()]);
    }
    process.send({ batches, per: pool.length });
  });
  process.send({ ready: true });
}

const freePort = () => new Promise((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });

/** The servers, with P's and S's URLs. */
async function servers(root, target, nodes) {
  const ports = [await freePort(), await freePort()];
  const cports = [await freePort(), await freePort()];
  const procs = [];
  for (let i = 0; i < nodes; i++) {
    if (target === 'nats') {
      const a = ['-a', '127.0.0.1', '-p', String(ports[i])];
      if (nodes > 1) a.push('--cluster_name', 'fp', '-cluster', `nats://127.0.0.1:${cports[i]}`, '-routes', `nats://127.0.0.1:${cports[1 - i]}`);
      procs.push(spawn('nats-server', a, { stdio: 'ignore' }));
      continue;
    }
    if (target === 'relay') {
      procs.push(spawn(process.execPath, [`${root}/bench/dist/relay-server.js`, '--port', String(ports[i])], { stdio: 'ignore' }));
      continue;
    }
    // As the harness starts them (targets/meshbus.ts), without the WebSocket gateway.
    const a = [`${root}/bin/meshbus.js`, 'start', '--port', String(ports[i]), '--http-port', '0', '--ws-port', 'off', '--log-level', 'error', '--name', `fp-${i}`];
    if (nodes > 1) a.push('--cluster-port', String(cports[i]), ...(i > 0 ? ['--seeds', `127.0.0.1:${cports[0]}`] : []));
    procs.push(spawn(process.execPath, a, { stdio: 'ignore', env: { ...process.env, MESHBUS_MAX_CONNECTIONS_PER_IP: '100000' } }));
  }
  await sleep(1500);
  return { procs, pubUrl: `127.0.0.1:${ports[0]}`, subUrl: `127.0.0.1:${ports[nodes - 1]}` };
}

/** [user+sys ms of every thread, main thread on-CPU ns, main thread involuntary switches]. */
function usage(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const s = readFileSync(`/proc/${pid}/sched`, 'utf8');
  const field = (k) => Number(s.match(new RegExp(`${k}\\s*:\\s*([\\d.]+)`))?.[1] ?? NaN);
  return [(Number(f[11]) + Number(f[12])) * 10, field('se.sum_exec_runtime') * 1e6, field('nr_involuntary_switches')];
}

function quantiles(xs) {
  const a = [...xs].sort((x, y) => x - y);
  const q = (p) => +(a[Math.min(a.length - 1, Math.floor(a.length * p))] ?? NaN).toFixed(2);
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

async function main() {
  const [root, target = 'meshbus', nodesArg = '2', payloadArg = '16', secondsArg = '4', spinArg = '0'] = process.argv.slice(2);
  if (!root) throw new Error('usage: node bench/flush-pipeline.mjs CHECKOUT [meshbus|nats|relay] [NODES=2] [PAYLOAD=16] [SECONDS=4] [SPIN=0]');
  const [nodes, payload, seconds, spin] = [Number(nodesArg), Number(payloadArg), Number(secondsArg), Number(spinArg)];
  const { procs, pubUrl, subUrl } = await servers(root, target, nodes);
  const start = (role, url) => new Promise((res) => { const c = fork(me, ['--child', role, root, target, url, String(payload)]); c.once('message', () => res(c)); });
  const sub = await start('sub', subUrl);
  const pub = await start('pub', pubUrl);
  await sleep(nodes > 1 ? 1500 : 300); // the subscriber's interest reaches node A
  const spinner = spin > 0 ? fork(me, ['--spin', String(spin), String(seconds + 2)]) : undefined;
  const all = { P: pub.pid, ...Object.fromEntries(procs.map((p, i) => [nodes > 1 ? 'AB'[i] : 'A', p.pid])), S: sub.pid };
  const t0 = now();
  pub.send({ t0, end: t0 + seconds * 1000 });
  await sleep(WARMUP_MS);
  const u0 = Object.fromEntries(Object.entries(all).map(([k, pid]) => [k, usage(pid)]));
  const { batches, per } = await new Promise((r) => pub.once('message', r));
  const u1 = Object.fromEntries(Object.entries(all).map(([k, pid]) => [k, usage(pid)]));
  const spinShare = spinner ? await new Promise((r) => { spinner.once('message', r); spinner.kill('SIGTERM'); }) : undefined;
  sub.send('count');
  const { n } = await new Promise((r) => sub.once('message', r));
  const events = batches.length * per;
  const span = batches.length ? (batches.at(-1)[2] - batches[0][0]) / 1000 : NaN;
  const perProcess = Object.fromEntries(Object.keys(all).map((k) => [k, {
    cpuNs: Math.round(((u1[k][0] - u0[k][0]) * 1e6) / events),
    mainNs: Math.round((u1[k][1] - u0[k][1]) / events),
    preempted: +(((u1[k][2] - u0[k][2]) * per) / events).toFixed(2),
  }]));
  console.log(JSON.stringify({
    target, nodes, payload, batch: per, rate: Math.round(events / span), received: n,
    pongMs: quantiles(batches.map((b) => b[2] - b[1])), publishMs: quantiles(batches.map((b) => b[1] - b[0])),
    perProcess, sumCpuNs: Object.values(perProcess).reduce((a, p) => a + p.cpuNs, 0), spinShare,
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  }));
  for (const c of [pub, sub, ...procs]) c.kill('SIGKILL');
  process.exit(0);
}

/** A competing process: busy `duty` of every 200 ms until told to stop; answers its CPU share of the time it ran. */
function spinLoop(duty, seconds) {
  const t0 = Date.now();
  const share = () => { const u = process.cpuUsage(); return +((u.user + u.system) / 1000 / (Date.now() - t0)).toFixed(2); };
  process.on('SIGTERM', () => { process.send(share()); process.exit(0); });
  const cycle = () => {
    const t = performance.now();
    while (performance.now() - t < duty * 200);
    if (Date.now() - t0 < seconds * 1000) setTimeout(cycle, (1 - duty) * 200);
  };
  cycle();
}

const [flag, ...rest] = process.argv.slice(2);
if (flag === '--child') await child(rest[0], rest[1], rest[2], rest[3], Number(rest[4]));
else if (flag === '--spin') spinLoop(Number(rest[0]), Number(rest[1]));
else await main();
