// Node CPU per delivered event over the WebSocket gateway (issue #17, bench/README.md "Profile").
//
//   node bench/raw-ws-load.mjs CHECKOUT PAYLOAD EVENTS [MESSAGE_BYTES] [SUBSCRIBERS]
//
// The WebSocket twin of raw-node-load.mjs: starts `meshbus start --ws-port` from CHECKOUT,
// connects `ws` clients (the package of CHECKOUT: with its bufferutil if installed;
// WS_NO_BUFFER_UTIL=1 turns it off) that parse nothing: the subscribers count bytes, the
// publisher sends EVENTS pre-encoded PUB frames in binary messages of MESSAGE_BYTES (default
// 64 KiB, whole frames) and waits for 'drain' past 1 MiB buffered. Prints one JSON line: node
// CPU (user + sys, /proc, 10 ms ticks) between the first send and the last byte received,
// divided by the events delivered. Alternate two checkouts and compare medians. Bounded: 60 s.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const [root, sizeS, nS, msgS, subsS] = process.argv.slice(2);
const { encodeFrame, encodeBody, FrameType } = await import(`${root}/proto/dist/index.js`);
const WebSocket = createRequire(`${root}/core/package.json`)('ws');
const size = Number(sizeS), N = Number(nS), msgBytes = Number(msgS ?? 65536), subs = Number(subsS ?? 1);
const freePort = () => new Promise((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const port = await freePort(), wport = await freePort();
const proc = spawn(process.execPath, [`${root}/bin/meshbus.js`, 'start', '--port', String(port), '--http-port', '0', '--ws-port', String(wport), '--log-level', 'warn'], { stdio: 'ignore', env: { ...process.env, MESHBUS_MAX_CONNECTIONS_PER_IP: '100000' } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu = () => { const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10e6; };
async function open() {
  for (let k = 0; k < 200; k++) {
    try {
      const ws = await new Promise((res, rej) => { const w = new WebSocket(`ws://127.0.0.1:${wport}`, { perMessageDeflate: false }); w.binaryType = 'nodebuffer'; w.once('open', () => res(w)); w.once('error', rej); });
      ws.send(encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], name: 'raw' }) }));
      await new Promise((res) => ws.once('message', res));
      return ws;
    } catch { await sleep(50); }
  }
  throw new Error('no node');
}
const topic = 'bench.raw.topic';
const subWs = [];
for (let i = 0; i < subs; i++) {
  const w = await open();
  w.send(encodeFrame({ type: FrameType.SUB, topic, correlation: 1, payload: encodeBody({}) }));
  subWs.push(w);
}
const pub = await open();
await sleep(300);
const frame = encodeFrame({ type: FrameType.PUB, topic, payload: new Uint8Array(size).fill(7) });
const per = Math.max(1, Math.floor(msgBytes / frame.length));
const block = Buffer.concat(Array.from({ length: per }, () => frame));
const expect = frame.length * N;
let done = 0;
const got = subWs.map(() => 0);
const allDone = new Promise((res) => subWs.forEach((w, i) => { w.removeAllListeners('message'); w.on('message', (c) => { got[i] += c.length; if (got[i] >= expect && got[i] - c.length < expect && ++done === subs) res(); }); }));
const c0 = cpu(); const t0 = process.hrtime.bigint();
let left = N;
while (left > 0) {
  const k = Math.min(per, left); left -= k;
  pub.send(k === per ? block : block.subarray(0, k * frame.length));
  if (pub.bufferedAmount > 1 << 20) await new Promise((r) => pub._socket.once('drain', r));
}
const r = await Promise.race([allDone, sleep(60000).then(() => 'timeout')]);
const c1 = cpu(); const t1 = process.hrtime.bigint();
const deliveries = N * subs;
console.log(JSON.stringify({ size, msgBytes, subs, r: r ?? 'ok', nsPerEvent: Math.round((c1 - c0) / deliveries), rate: Math.round(deliveries / (Number(t1 - t0) / 1e9)), got: got.map((g) => Math.round(g / frame.length)).slice(0, 3) }));
for (const w of [...subWs, pub]) w.terminate();
proc.kill('SIGKILL');
process.exit(0);
