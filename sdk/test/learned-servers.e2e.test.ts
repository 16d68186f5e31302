/**
 * Servers learned from nodes follow the mesh as the current node tells it
 * (a WELCOME's peers replace the learned ones), and dead learned servers do
 * not stretch the reconnect backoff to a live configured one. Fake nodes on
 * loopback that send WELCOME with `peers`; dead servers are free ports.
 */
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { freePort } from '@meshbus/core';
import { until, cleanups } from '@meshbus/testkit';
import { connect, type Client } from '../src/index.js';
import { fakeTcpNode, fakeWelcome, nextStatus } from './helpers.js';

const cleanup = cleanups();

function track(c: Client): Client {
  cleanup.push(() => c.close().catch(() => {}));
  return c;
}

async function deadPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}

describe('servers learned from WELCOME peers', () => {
  it('each WELCOME replaces the learned servers (a peer it no longer names is forgotten), the configured server stays', async () => {
    const dead = await deadPorts(4);
    const lists = [[dead[0], dead[1]], [dead[2]], [dead[3]]].map((l) => l.map((p) => `127.0.0.1:${p}`));
    const node = await fakeTcpNode((s, f, conn) => {
      if (f.type === FrameType.HELLO) s.write(fakeWelcome(lists[Math.min(conn, lists.length) - 1]!));
    });
    cleanup.push(() => node.stop());
    const me = `tcp://127.0.0.1:${node.port}`;
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 5, max: 20 } }));
    expect(c.servers).toEqual([me, `tcp://127.0.0.1:${dead[0]}`, `tcp://127.0.0.1:${dead[1]}`]);
    for (const [i, want] of [[2, [me, `tcp://127.0.0.1:${dead[2]}`]], [3, [me, `tcp://127.0.0.1:${dead[3]}`]]] as const) {
      c.suspend();
      c.resume();
      await until(() => c.isConnected && node.conns() === i, `connection ${i}`, 5000);
      // Was [me, dead0, dead1, dead2, …]: every peer ever named kept for good.
      expect(c.servers).toEqual(want);
    }
    expect(c.isConnected).toBe(true);
  });

  it('dead learned servers cost no backoff: a dropped connection is back on the live configured server at once (took ~30 s with 8 dead peers)', async () => {
    const dead = await deadPorts(8);
    const node = await fakeTcpNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(fakeWelcome(dead.map((p) => `127.0.0.1:${p}`)));
    });
    cleanup.push(() => node.stop());
    // random ~1: every delay at its ceiling, so the old per-attempt doubling is deterministic (250, 500, … 20 000 ms).
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 250, max: 20_000, random: () => 0.999 } }));
    expect(c.servers).toHaveLength(9);
    for (let round = 0; round < 2; round++) {
      const t = Date.now();
      // The status, not a poll of isConnected: the reconnect may come before the first poll.
      const dropped = nextStatus(c, (s) => s.type === 'disconnected', 5000);
      for (const s of node.sockets) s.destroy();
      await dropped;
      await until(() => c.isConnected, 'back on the configured server', 3000);
      expect(Date.now() - t).toBeLessThan(3000);
    }
  });

  it('setOnline(false) does not hold reconnects for ever (a platform wrong about the network), and a connection made clears it', async () => {
    const node = await fakeTcpNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(fakeWelcome());
    });
    cleanup.push(() => node.stop());
    // random ~1: "offline" attempts wait ~max (2 s); a normal reconnect's first attempt waits at most a few ms.
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 10, max: 2000, random: () => 0.999 } }));
    c.setOnline(false);
    for (const s of node.sockets) s.destroy();
    await until(() => !c.isConnected, 'dropped', 5000);
    // Was: no attempt until setOnline(true), which never came.
    await until(() => c.isConnected, 'reconnected while "offline"', 5000);
    // Cleared by that connection: the next drop reconnects at once (an immediate attempt).
    const t = Date.now();
    const dropped = nextStatus(c, (s) => s.type === 'disconnected', 5000);
    for (const s of node.sockets) s.destroy();
    await dropped;
    await until(() => c.isConnected, 'reconnected', 5000);
    expect(Date.now() - t).toBeLessThan(1000);
  });
});
