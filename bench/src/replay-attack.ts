/**
 * Replay attack on the durable store (issue #13 item 3): a topic holds
 * ~60 MB of history (15 000 events of 4 KiB); a raw client sends 20
 * `SUB … since [epoch, 0]` in one write and never reads. Measures, on a
 * redis-server of its own (never the shared one):
 *
 * - the largest PING round trip to that Redis during the attack (ms),
 * - Redis used_memory growth (peak during the attack minus before, MB; the
 *   peak includes client output buffers, i.e. replies Redis builds),
 * - how many acknowledged publishes of an innocent publisher were NACKed.
 *
 * Usage: node bench/dist/replay-attack.js [--events 15000] [--size 4096] [--subs 20] [--seconds 15] [--per-connection N]
 * Prints one JSON line. Needs redis-server on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { freePort, silentLogger, startNode } from '@meshbus/core';
import { durabilityOf } from '@meshbus/core/durable';
import { connect } from '@meshbus/sdk';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '15000' },
    size: { type: 'string', default: '4096' },
    subs: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '15' },
    /** Replays allowed per connection (default: the node's, 4); e.g. 64 to measure paging alone. */
    'per-connection': { type: 'string' },
  },
});
const EVENTS = Number(values.events);
const SIZE = Number(values.size);
const SUBS = Number(values.subs);
const SECONDS = Number(values.seconds);
const PER_CONNECTION = values['per-connection'] !== undefined ? Number(values['per-connection']) : undefined;
const TOPIC = 'attack.t';

async function startRedis(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (await answersPing(port)) return { port, child };
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('redis-server did not start');
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')));
    sock.on('error', () => done(false));
  });
}

/**
 * PINGs Redis back to back over one raw connection, in a worker thread (its
 * own event loop, so the node's work in this process does not inflate the
 * figure); stop() resolves with the largest round trip in ms.
 */
function pinger(port: number): { stop(): Promise<number> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const sock = net.connect(workerData.port, '127.0.0.1');
    let max = 0, sent = 0, stopped = false;
    const send = () => { if (stopped) return; sent = performance.now(); sock.write('PING\\r\\n'); };
    sock.on('connect', send);
    sock.on('data', () => { max = Math.max(max, performance.now() - sent); setTimeout(send, 5); });
    sock.on('error', () => {});
    parentPort.on('message', () => {
      stopped = true;
      if (sent > 0) max = Math.max(max, performance.now() - sent);
      sock.destroy();
      parentPort.postMessage(max);
    });
  `;
  const w = new Worker(code, { eval: true, workerData: { port } });
  return {
    stop: () =>
      new Promise<number>((resolve) => {
        w.once('message', (max: number) => {
          void w.terminate();
          resolve(max);
        });
        w.postMessage('stop');
      }),
  };
}

async function usedMemory(r: Redis): Promise<number> {
  const info = await r.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const url = `redis://127.0.0.1:${redis.port}`;
  const node = await startNode({ port: 0, logger: silentLogger, durable: { redis: url, prefix: 'attack:', topics: [{ pattern: 'attack.>', history: { size: EVENTS + 1000 } }], ...(PER_CONNECTION ? { replay: { perConnection: PER_CONNECTION } } : {}) } });
  const info = new Redis(redis.port, '127.0.0.1');
  try {
    // Fill the history through the store's own append script (what the node runs per publish).
    const store = durabilityOf(node)!.historyStore;
    const rule = durabilityOf(node)!.cfg.topics[0]!;
    const payload = Buffer.alloc(SIZE, 0x61);
    const frame = encodeFrame({ type: FrameType.PUB, topic: TOPIC, payload });
    let epoch = '';
    for (let i = 0; i < EVENTS; i += 500) {
      const batch = [];
      for (let k = i; k < Math.min(EVENTS, i + 500); k++) batch.push(store.append(TOPIC, rule, frame));
      epoch = (await Promise.all(batch))[0]!.epoch;
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = await usedMemory(info);

    // An innocent publisher: one acknowledged durable publish every 20 ms.
    const pub = await connect(`127.0.0.1:${node.port}`);
    let acked = 0;
    let nacked = 0;
    let publishing = true;
    const publishLoop = (async () => {
      while (publishing) {
        await pub.publish('attack.other', 'x', { ack: true }).then(
          () => acked++,
          () => nacked++,
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const ping = pinger(redis.port);
    let peak = before;
    const sampler = setInterval(() => {
      usedMemory(info).then(
        (m) => (peak = Math.max(peak, m)),
        () => {},
      );
    }, 200);

    // The attacker: HELLO, then SUBS × SUB since [epoch, 0] in one write, and never read.
    const attacker = net.connect(node.port, '127.0.0.1');
    attacker.on('error', () => {});
    await new Promise<void>((r) => attacker.once('connect', () => r()));
    const frames = [encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) })];
    for (let sid = 1; sid <= SUBS; sid++) frames.push(encodeFrame({ type: FrameType.SUB, topic: TOPIC, correlation: sid, payload: encodeBody({ since: [epoch, 0] }) }));
    attacker.write(Buffer.concat(frames));
    attacker.pause();

    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    clearInterval(sampler);
    const maxPingMs = await ping.stop();
    attacker.destroy();
    // A stalled Redis answers no INFO while stalled: its own peak (read once it answers again) covers that time.
    const after = await Promise.race([info.info('memory'), new Promise<string>((r) => setTimeout(() => r(''), 60_000))]);
    const peakSinceStart = Number(/used_memory_peak:(\d+)/.exec(after)?.[1] ?? 0);
    peak = Math.max(peak, peakSinceStart);
    publishing = false;
    await publishLoop;
    // Read loosely: the same script measures builds from before these counters existed.
    const counters = (node.stats as { store?: { replaysRefused: number; replayPages: number } }).store;
    const refused = counters?.replaysRefused;
    const pages = counters?.replayPages;
    await pub.close();
    console.log(
      JSON.stringify({
        events: EVENTS,
        eventBytes: SIZE,
        historyMB: +((EVENTS * (SIZE + 80)) / 1e6).toFixed(1),
        subs: SUBS,
        perConnection: PER_CONNECTION ?? 'default',
        seconds: SECONDS,
        maxRedisPingMs: +maxPingMs.toFixed(1),
        redisUsedMemoryGrowthMB: +((peak - before) / 1e6).toFixed(1),
        innocentPublishes: { acked, nacked },
        replaysRefused: refused,
        replayPages: pages,
        nodeRssMB: +(process.memoryUsage().rss / 1e6).toFixed(0),
      }),
    );
  } finally {
    info.disconnect();
    await node.close();
    redis.child.kill('SIGKILL');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
