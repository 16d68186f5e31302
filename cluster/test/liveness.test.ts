import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { RawClient, RawFrames, until } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';
import { rawPeer } from './mesh-helpers.js';

/**
 * Node-side sessions and peer links use the SDK's liveness rule (proto
 * Liveness): anything received answers the pings sent so far. So the other
 * end of a connection that only answers PINGs, or only publishes (and never
 * answers a PING), is never declared stale; one that sends nothing is, with
 * ERROR MB_ERR_STALE_CONNECTION. Each case runs over real sockets against a
 * node whose ping interval is 100 ms (unanswered pings allowed: 2).
 */
const PING_MS = 100;

type Behaviour = 'pongs' | 'publishes' | 'silent';

/** Plays one behaviour on a raw connection until stopped: answer PINGs only, publish only, or nothing. */
function play(c: RawFrames, how: Behaviour, topic: string): { stop(): void; published: () => number } {
  let published = 0;
  let answered = 0;
  const timer = setInterval(() => {
    if (c.closed) return;
    if (how === 'publishes') {
      c.send({ type: FrameType.PUB, topic, payload: Buffer.from('x') });
      published++;
    } else if (how === 'pongs') {
      const pings = c.got.filter((g) => g.type === FrameType.PING);
      for (const p of pings.slice(answered)) c.send({ type: FrameType.PONG, correlation: p.correlation });
      answered = pings.length;
    }
  }, PING_MS / 4);
  return { stop: () => clearInterval(timer), published: () => published };
}

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/**
 * Runs the three behaviours side by side until the silent one was declared
 * stale AND the others lived through at least 8 ping intervals (counted in
 * PINGs received, or events sent, not in elapsed time), then checks who is
 * still open.
 */
async function runAll(connect: () => Promise<RawFrames>, topic: string): Promise<void> {
  const ends = {} as Record<Behaviour, RawFrames>;
  const players = {} as Record<Behaviour, ReturnType<typeof play>>;
  for (const how of ['pongs', 'publishes', 'silent'] as const) {
    ends[how] = await connect();
    players[how] = play(ends[how], how, topic);
    stops.push(() => players[how].stop());
  }
  await until(() => ends.silent.closed, 'the silent connection to be closed');
  expect(ends.silent.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(['MB_ERR_STALE_CONNECTION']);
  // 8 intervals: far past the 3 a connection whose answers were ignored would survive.
  // (Stop early if one closes: the checks below then say which.)
  await until(() => ends.pongs.closed || ends.pongs.got.filter((g) => g.type === FrameType.PING).length >= 8, 'eight PINGs to the pong-only end');
  await until(() => ends.publishes.closed || players.publishes.published() >= 32, 'eight intervals of publishing');
  for (const how of ['pongs', 'publishes'] as const) {
    expect(ends[how].closed, `${how} end still open`).toBe(false);
    expect(ends[how].got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual([]);
  }
}

describe('liveness of node-side connections', () => {
  it('a client session that only answers PINGs or only publishes is not stale; a silent one is', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, pingInterval: PING_MS });
    stops.push(() => node.close());
    const clients: RawClient[] = [];
    stops.push(() => clients.forEach((c) => c.close()));
    await runAll(async () => {
      const c = await RawClient.connect(node.port);
      clients.push(c);
      return c;
    }, 'live.t');
  });

  it('a peer link whose other end only answers PINGs or only publishes is not stale; a silent one is', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, pingInterval: 60_000 });
    stops.push(() => node.close());
    const cluster = await new ClusterNode(node, { port: 0, pingInterval: PING_MS, mode: 'partial' }).start();
    stops.push(() => cluster.stop());
    const peers: RawClient[] = [];
    stops.push(() => peers.forEach((p) => p.close()));
    await runAll(async () => {
      // A cluster address nobody listens on: the node never links back to it (partial mesh).
      const p = await rawPeer(cluster.port, { id: randomBytes(8).toString('hex'), name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1' });
      peers.push(p);
      return p;
    }, 'live.p');
    expect(cluster.peers().filter((p) => p.state === 'up')).toHaveLength(2);
  });
});

