// The SDK subscriber's CPU per event (issue #17, bench/README.md "The Node client's receive path"):
//
//   node bench/sub-cost.mjs CHECKOUT SIZE EVENTS [ws]
//
// Starts `meshbus start` of CHECKOUT (client port, WebSocket gateway), a subscriber process with
// CHECKOUT's SDK (over TCP, or the gateway with `ws`) and, in this process, a raw publisher that
// writes pre-encoded PUB frames in 256 KiB writes (it parses nothing). Prints the subscriber's
// user + system CPU (process.cpuUsage) from its first to its last event, per event. Alternate two
// checkouts (A/B) on one machine and compare; the node and the publisher share the cores. Bounded: 60 s.
import { spawn, fork } from 'node:child_process';
import { connect as netConnect, createServer } from 'node:net';
const [root, sizeS, nS, mode] = process.argv.slice(2);
if (process.env.CHILD) {
  const { connect } = await import(`${root}/sdk/dist/index.js`);
  const c = await connect(process.env.URL);
  let n = 0, t0, u0; const N = Number(nS);
  c.subscribe('cost.t', { callback: () => { if (n === 0) { t0 = process.hrtime.bigint(); u0 = process.cpuUsage(); } if (++n === N) { const u = process.cpuUsage(u0); process.send({ ns: ((u.user + u.system) * 1000) / (N - 1) }); } } });
  await c.flush();
  process.send({ ready: true });
} else {
  const freePort = () => new Promise((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
  const port = await freePort(), wsPort = await freePort();
  const node = spawn(process.execPath, [`${root}/bin/meshbus.js`, 'start', '--port', String(port), '--ws-port', String(wsPort), '--http-port', '0', '--log-level', 'warn'], { stdio: 'ignore' });
  const { encodeFrame, encodeBody, FrameType } = await import(`${root}/proto/dist/index.js`);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(700);
  const url = mode === 'ws' ? `ws://127.0.0.1:${wsPort}` : `127.0.0.1:${port}`;
  const child = fork(new URL(import.meta.url).pathname, process.argv.slice(2), { env: { ...process.env, CHILD: '1', URL: url } });
  const result = new Promise((r) => child.on('message', (m) => { if (m.ns) r(m.ns); }));
  await new Promise((r) => child.on('message', (m) => m.ready && r()));
  const s = netConnect(port, '127.0.0.1'); await new Promise((r) => s.on('connect', r));
  s.write(encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], name: 'raw' }) }));
  await new Promise((r) => s.once('data', r));
  const f = encodeFrame({ type: FrameType.PUB, topic: 'cost.t', payload: new Uint8Array(Number(sizeS)) });
  const per = Math.max(1, Math.floor(262144 / f.length)); const batch = Buffer.concat(Array(per).fill(f));
  const N = Number(nS); let sent = 0;
  while (sent < N) { const k = Math.min(per, N - sent); const ok = s.write(k === per ? batch : batch.subarray(0, k * f.length)); sent += k; if (!ok) await new Promise((r) => s.once('drain', r)); }
  const ns = await Promise.race([result, sleep(60000).then(() => NaN)]);
  console.log(JSON.stringify({ root, size: Number(sizeS), mode: mode ?? 'tcp', subNsPerEvent: Math.round(ns) }));
  child.kill(); s.destroy(); node.kill();
  process.exit(0);
}
