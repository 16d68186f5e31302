/**
 * A hostile node against the Node SDK: what a node sends must never throw
 * out of the client nor grow its memory or CPU without bound.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameDecoder, FrameType, encodeBody, encodeFrame, type Frame } from '@meshbus/proto';
import { connect, type Client } from '../src/index.js';
import { until } from './helpers.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A fake node on loopback: `onFrame` answers each frame a client sends on socket `s`. */
async function fakeNode(onFrame: (s: net.Socket, f: Frame) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    const d = new FrameDecoder();
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.on('data', (c) => d.push(c, (f) => onFrame(s, f), () => s.destroy()));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    srv.close(() => r());
  }));
  return (srv.address() as net.AddressInfo).port;
}

const welcome = (peers: string[], ping = 30_000): Uint8Array =>
  encodeFrame({ type: FrameType.WELCOME, payload: encodeBody({ v: 1, node: 'n', client: 'c0ffee', maxPayload: 1 << 20, maxTopic: 256, ping, peers }) });

async function client(port: number): Promise<Client> {
  const c = await connect(`127.0.0.1:${port}`, { reconnectBackoff: { base: 20, max: 50 } });
  cleanup.push(() => c.close().catch(() => {}));
  return c;
}

describe('peer lists from a node', () => {
  it('a WELCOME with 40,000 peers and a GOODBYE with 100,000 reconnect targets keep the server list bounded', async () => {
    const many = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}.example:${1 + (i % 60_000)}`);
    let helloB = 0;
    const b = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      helloB++;
      s.write(welcome([]));
    });
    const a = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome(many(40_000, 'w')));
      s.write(encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 2009, reason: 'bye', reconnect: [`127.0.0.1:${b}`, ...many(100_000, 'g')] }) }));
    });
    const c = await client(a);
    await until(() => helloB >= 1 && c.isConnected, 10_000, 'redirected to the GOODBYE target');
    expect(c.servers.length).toBeLessThanOrEqual(1 + 1024);
    expect(c.servers).toContain(`tcp://127.0.0.1:${b}`);
  });
});

describe('WELCOME ping from a node', () => {
  it('a ping interval past what a timer can hold (2^53 ms) does not turn the heartbeat into a 1 ms timer', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    cleanup.push(() => void process.off('warning', onWarning));
    let pings = 0;
    const port = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome([], Number.MAX_SAFE_INTEGER));
      if (f.type === FrameType.PING) pings++;
    });
    const c = await client(port);
    // A round trip of our own: the heartbeat has had its first ticks meanwhile.
    await until(() => c.isConnected, 5000, 'connected');
    await new Promise((r) => setTimeout(r, 200));
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    expect(pings).toBe(0);
  });
});
