// The node's JavaScript cost per published event, without sockets (issue #17, bench/README.md
// "Runs of events"):
//
//   node bench/node-js-cost.mjs CHECKOUT [PAYLOAD=16] [SUBSCRIBERS=1] [TOPICS=1]
//
// A MeshNode from CHECKOUT (its core/dist) with transports that only count bytes (their
// `buffered` grows within a chunk and empties before the next, as a socket that keeps up);
// one publisher session fed 64 KiB chunks of PUBs on one topic, SUBSCRIBERS sessions
// subscribed to it (TOPICS > 1: the publisher cycles bench.events.t<i>, the subscribers
// take bench.events.*, as the harness's topics-N rows). Prints the ns per published event of 5 rounds of 3 M events (the cost of
// refilling the chunks subtracted: the node stamps them in place). Run it alternately on two
// checkouts and compare medians; it is the routing code's cost, not a rate.
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname;
const size = Number(process.argv[3] ?? 16);
const { MeshNode } = await import(`${root}/core/dist/index.js`);
const { encodeFrame, encodeBody, FrameType } = await import(`${root}/proto/dist/index.js`);
const node = new MeshNode({ logLevel: 'error' });
let delivered = 0;
const all = [];
function fake() {
  let ev;
  const t = {
    remote: '127.0.0.1:1', kind: 'tcp', buffered: 0,
    write(c, tail) { const n = c.length + (tail ? tail.length : 0); delivered += n; t.buffered += n; },
    writeRange(b, s, e) { delivered += e - s; t.buffered += e - s; },
    end() {}, destroy() {}, pause() {}, resume() {},
  };
  all.push(t);
  const session = node.attach((events) => { ev = events; return t; });
  return { push: (c) => { for (const x of all) x.buffered = 0; ev.data(c); } };
}
const nsubs = Number(process.argv[4] ?? 1);
const pub = fake(); const subsList = Array.from({ length: nsubs }, () => fake()); const sub = subsList[0];
const hello = encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], name: 'x' }) });
pub.push(hello); for (const x of subsList) x.push(hello);
await new Promise((r) => setTimeout(r, 50));
const ntopics = Number(process.argv[5] ?? 1);
const pattern = ntopics > 1 ? 'bench.events.*' : 'bench.events.x';
for (const x of subsList) x.push(encodeFrame({ type: FrameType.SUB, topic: pattern, correlation: 1, payload: encodeBody({}) }));
await new Promise((r) => setTimeout(r, 50));
const frames = Array.from({ length: ntopics }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: ntopics > 1 ? `bench.events.t${i}` : 'bench.events.x', payload: new Uint8Array(size) }));
const one = frames[frames.length - 1];
const per = Math.floor(65536 / one.length);
const N = 3_000_000;
// 64 chunks of `per` events (the topics in turn across chunks), each refilled from its template before it is fed again
let next = 0;
const templates = [];
for (let k = 0; k < 64; k++) {
  const parts = Array.from({ length: per }, () => frames[next++ % ntopics]);
  templates.push(Buffer.concat(parts));
}
let chunks = templates.map((t) => Buffer.from(t));
function round(n) {
  let sent = 0, k = 0;
  const t0 = process.hrtime.bigint();
  while (sent < n) {
    // fresh bytes each time: the node stamps in place
    const c = chunks[k & 63];
    c.set(templates[k++ & 63]);
    pub.push(c); sent += per;
  }
  return Number(process.hrtime.bigint() - t0) / sent;
}
// copy cost alone
const tc0 = process.hrtime.bigint(); let m = 0; let j = 0; while (m < N) { chunks[j & 63].set(templates[j & 63]); j++; m += per; } const copyNs = Number(process.hrtime.bigint() - tc0) / m;
round(500_000);
const r = [];
for (let i = 0; i < 5; i++) { r.push(round(N)); await new Promise((res) => setImmediate(res)); }
r.sort((a, b) => a - b);
console.log(JSON.stringify({ root, size, nsubs, ntopics, nsPerEvent: r.map((x) => +(x - copyNs).toFixed(1)), median: +(r[2] - copyNs).toFixed(1), copyNs: +copyNs.toFixed(1), delivered }));
process.exit(0);
