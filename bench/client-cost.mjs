// Client CPU per event, in one process, without a node or sockets: the SDK
// of CHECKOUT (its built sdk/dist and proto/dist) over an in-memory
// transport that answers HELLO and PING itself. Publisher: publish() of
// EVENTS events cycling TOPICS topics `bench.events.t<i>`, flushed every
// 1,000, frames thrown away. Subscriber: the same events, encoded once as a
// node would deliver them (PUB, sid 0), handed to the client in 64 KiB
// chunks, to a subscription on `bench.events.*`. Prints ns of CPU
// (process.cpuUsage) per event for each side: the figure to compare
// between checkouts (alternate them; the machine is shared).
//
//   node bench/client-cost.mjs CHECKOUT [TOPICS=10000] [SIZE=128] [EVENTS=1000000]
//   VARY=1: the publisher's payloads are SIZE - (i % 8) bytes, a length that
//   changes from one event to the next (application events of varying size).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir = '.', topicsArg = '10000', sizeArg = '128', eventsArg = '1000000'] = process.argv.slice(2);
const root = resolve(dir);
const proto = await import(pathToFileURL(`${root}/proto/dist/index.js`).href);
const sdk = await import(pathToFileURL(`${root}/sdk/dist/core.js`).href);
const { FrameType, OFF, VERSION, encodeBody, encodeFrame } = proto;
const nTopics = Number(topicsArg);
const size = Number(sizeArg);
const events = Number(eventsArg);
const topics = Array.from({ length: nTopics }, (_, k) => `bench.events.t${k}`);

/**
 * A transport whose far end is this function: it walks frame boundaries
 * (length prefix and type byte only, as the relay does: PUBs cost it
 * nothing), answers HELLO with WELCOME and PING with PONG.
 */
function memoryTransport() {
  const t = {
    pendingBytes: 0,
    onData: () => {},
    onClose: () => {},
    async connect() {},
    close() {},
    send(chunks) {
      for (const c of chunks) {
        const v = new DataView(c.buffer, c.byteOffset, c.byteLength);
        // A [head, payload] pair (payloads over 2 KiB) starts a frame only in its head: walk the heads.
        for (let off = 0; off + 4 <= c.length && c[off + OFF.MAGIC] === 0x4d; off += 4 + v.getUint32(off + OFF.LENGTH)) {
          const type = c[off + OFF.TYPE];
          if (type === FrameType.HELLO) {
            const body = { v: VERSION, node: 'feedfacecafebeef', client: '0000000000000001', maxPayload: 1 << 20, maxTopic: 256, ping: 600_000, peers: [] };
            queueMicrotask(() => t.onData(encodeFrame({ type: FrameType.WELCOME, payload: encodeBody(body) })));
          } else if (type === FrameType.PING) {
            const pong = encodeFrame({ type: FrameType.PONG, correlation: v.getUint32(off + OFF.CORRELATION) });
            queueMicrotask(() => t.onData(pong));
          }
        }
      }
    },
  };
  return t;
}

let transport;
const client = await sdk.connect('tcp://127.0.0.1:1', { transport: () => (transport = memoryTransport()), name: 'client-cost' });
const payload = new Uint8Array(size);
const payloads = process.env.VARY === '1' ? Array.from({ length: 8 }, (_, k) => payload.subarray(0, size - k)) : undefined;

function cpuNs(fn) {
  const c0 = process.cpuUsage();
  return fn().then(() => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) * 1000;
  });
}

async function publishAll(n) {
  for (let i = 0; i < n; i++) {
    client.publish(topics[i % nTopics], payloads ? payloads[i & 7] : payload);
    if (i % 1000 === 999) await client.flush();
  }
  await client.flush();
}

// The frames a node would deliver, 64 KiB chunks.
const chunks = [];
{
  const frames = topics.map((topic) => encodeFrame({ type: FrameType.PUB, topic, payload }));
  let parts = [];
  let bytes = 0;
  for (let i = 0; i < events; i++) {
    const f = frames[i % nTopics];
    parts.push(f);
    bytes += f.length;
    if (bytes >= 65536 || i === events - 1) {
      const c = new Uint8Array(bytes);
      let o = 0;
      for (const p of parts) {
        c.set(p, o);
        o += p.length;
      }
      chunks.push(c);
      parts = [];
      bytes = 0;
    }
  }
}
let received = 0;
client.subscribe('bench.events.*', { callback: () => received++ });
await client.flush();

async function receiveAll() {
  for (const c of chunks) {
    transport.onData(c.slice());
    await Promise.resolve();
  }
  await client.flush();
}

// Warm-up, then measured.
await publishAll(Math.min(events, 200_000));
const pubNs = await cpuNs(() => publishAll(events));
await receiveAll();
received = 0;
const subNs = await cpuNs(receiveAll);
if (received !== events) throw new Error(`received ${received} of ${events}`);
console.log(JSON.stringify({ checkout: root, topics: nTopics, size, events, publishNsPerEvent: Math.round(pubNs / events), receiveNsPerEvent: Math.round(subNs / events) }));
await client.close();
