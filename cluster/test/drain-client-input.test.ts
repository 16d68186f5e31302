/**
 * A draining node (SIGTERM, node.shutdown()) keeps reading what each client
 * sent before it read its GOODBYE (SPEC 10.7): a review found the node
 * stopped reading at the GOODBYE, so events in flight (on the socket, in the
 * node's unread buffers) were lost with no signal to anyone — a publisher
 * with a second server lost ~50 of 30,000 events at each rolling restart,
 * its outbox empty, no error. Each client here publishes events after its
 * node sent the GOODBYE and before the client read it (its reading paused),
 * then closes its side: every event must reach a subscriber on the other
 * node of the mesh, over TCP and over WebSocket alike.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { FrameDecoder, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { WsGateway } from '@meshbus/core/ws';
import { RawClient, RawWs, sleep, until, type RawFrames } from '@meshbus/testkit';
import { fullyMeshed, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const nodes: TestNode[] = [];
const undo: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of undo.splice(0).reverse()) await f();
  for (const t of nodes.splice(0)) await stopMeshNode(t);
});

/** Nodes a (the one drained) and b (the subscriber's), linked, with b's subscriber's interest known at a. */
async function mesh(nodeOpts: Parameters<typeof startMeshNode>[2] = {}): Promise<{ a: TestNode; b: TestNode; sub: RawClient }> {
  const a = await startMeshNode({}, 'A', { drainTimeout: 3000, ...nodeOpts });
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'B');
  nodes.push(b);
  await until(() => fullyMeshed([a, b]), 'meshed');
  const sub = await RawClient.connect(b.node.port);
  undo.push(() => sub.close());
  sub.sub('dr.>', 1);
  await sub.flush();
  const probe = await RawClient.connect(a.node.port);
  await until(async () => {
    probe.pub('dr.probe', 'p');
    await probe.flush();
    await sleep(20);
    return sub.events('dr.probe').length > 0;
  }, 'interest at a');
  probe.close();
  return { a, b, sub };
}

/**
 * `pub` publishes 500 events, node a starts draining (its GOODBYE to `pub` is queued at once), `pub` publishes
 * 500 more before it reads anything (reading paused), then reads the GOODBYE and closes its side (`closeSide`).
 */
async function publishAcrossGoodbye(a: TestNode, sub: RawClient, pub: RawFrames, closeSide: () => void): Promise<void> {
  for (let i = 0; i < 500; i++) pub.pub('dr.t', String(i));
  await pub.flush();
  pub.pauseReading();
  const stopping = a.node.shutdown();
  for (let i = 500; i < 1000; i++) pub.pub('dr.t', String(i));
  pub.resumeReading();
  await pub.waitFor((g) => g.type === FrameType.GOODBYE);
  closeSide();
  await stopping;
  await until(() => sub.events('dr.t').length >= 1000, 'all 1000 events at b', 3000).catch(() => undefined);
  const got = new Set(sub.events('dr.t').map((g) => Number(g.payload.toString())));
  const missing = [...Array(1000).keys()].filter((i) => !got.has(i));
  // Before: the 500 sent after the node's GOODBYE were discarded unread (missing 500..999), no counter said so.
  expect(missing).toEqual([]);
  expect(a.node.stats.msgsIn).toBeGreaterThanOrEqual(1000);
}

describe('a draining node reads its clients until they close (SPEC 10.7)', () => {
  it('TCP: events a client sent before it read its GOODBYE reach a subscriber on another node', async () => {
    const { a, sub } = await mesh();
    const pub = await RawClient.connect(a.node.port);
    undo.push(() => pub.close());
    // Half-close, as the SDK does (socket.end after its last write): the node reads to the FIN.
    await publishAcrossGoodbye(a, sub, pub, () => pub.socket.end());
  });

  it('WebSocket: the same over the gateway (the client closes with a close frame after its last message)', async () => {
    const { a, sub } = await mesh();
    const g = await new WsGateway(a.node, { port: 0, host: '127.0.0.1' }).listen();
    undo.push(() => g.close());
    const pub = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
    undo.push(() => pub.ws.terminate());
    await publishAcrossGoodbye(a, sub, pub, () => pub.ws.close());
  });

  it('a client that keeps publishing after its GOODBYE does not hold the drain past drainTimeout; its SUBs are ignored, the rate limit still applies', async () => {
    const { a, sub } = await mesh({ drainTimeout: 800, publishRate: 1000, publishBurst: 1000 });
    // Hostile: half-open allowed (the node's FIN does not end its side), never closes, publishes on past the rate
    // and subscribes after the GOODBYE.
    const sock = net.connect({ port: a.node.port, host: '127.0.0.1', allowHalfOpen: true });
    undo.push(() => sock.destroy());
    const got: number[] = [];
    let closed = false;
    const decoder = new FrameDecoder();
    sock.on('data', (c) => decoder.push(c, (f) => got.push(f.type), () => {}));
    sock.on('close', () => (closed = true));
    sock.on('error', () => {});
    sock.write(encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) }));
    await until(() => got.includes(FrameType.WELCOME), 'WELCOME');
    const t0 = Date.now();
    const stopping = a.node.shutdown().then(() => Date.now() - t0);
    await until(() => got.includes(FrameType.GOODBYE), 'GOODBYE');
    sock.write(encodeFrame({ type: FrameType.SUB, topic: 'dr.>', correlation: 7, payload: encodeBody({}) }));
    let sent = 0;
    // On until the node cut it (its next write after the cut is reset).
    while (!closed && Date.now() - t0 < 5000) {
      for (let i = 0; i < 200; i++) sock.write(encodeFrame({ type: FrameType.PUB, topic: 'dr.h', payload: Buffer.from(String(sent++)) }));
      await sleep(5);
    }
    expect(await stopping).toBeLessThan(800 + 700);
    expect(closed).toBe(true);
    expect(sent).toBeGreaterThan(2000);
    // What it published after the GOODBYE was routed, within the rate limit; the rest refused and counted.
    expect(a.node.stats.rateLimited).toBeGreaterThan(0);
    await sleep(100);
    const routed = sub.events('dr.h').length;
    expect(routed).toBeGreaterThan(0);
    expect(routed).toBeLessThanOrEqual(1000 + 1000 * 1.5 + 10);
    // Nothing follows the GOODBYE: no delivery for its SUB, no NACK or ERROR for the refused publishes.
    expect(got.slice(got.indexOf(FrameType.GOODBYE) + 1)).toEqual([]);
  });
});
