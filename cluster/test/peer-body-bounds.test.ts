/**
 * A peer's control bodies are decoded within a bound on maps and arrays,
 * checked on the bytes first (cluster peer-bodies.ts, SPEC 7 "Peer links";
 * thirteenth session). Before, HELLO, WELCOME, AUTH, ERROR, INTEREST and
 * PEERS bodies (and any other frame type a peer sent) went to msgpackr
 * unbounded: an empty map is one byte and an object to build, so anything
 * that reached the cluster port spent 16 KiB of them on its HELLO before
 * authenticating, and an authenticated peer's 1 MB INTEREST of them held the
 * node's event loop ~0.3 s. Real nodes and raw TCP frames on loopback.
 */
import { describe, expect, it } from 'vitest';
import { Flags, FrameType, encodeBody, type FrameSpec } from '@meshbus/proto';
import { silentLogger, startNode, type Logger } from '@meshbus/core';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { ClusterNode, type PeerInfo } from '../src/index.js';
import { newNonce } from '../src/peer-auth.js';
import { fakePeer, remoteInterest, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup = cleanups();

async function node(): Promise<TestNode & { lines: string[] }> {
  const lines: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (o, msg) => lines.push(`${msg ?? ''} ${JSON.stringify(o)}`) };
  const n = await startNode({ port: 0, logger, name: 'a', pingInterval: 1000 });
  const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 60_000 }).start();
  const t = { node: n, cluster, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${cluster.port}`, lines };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

const info = (over: Partial<PeerInfo> = {}): PeerInfo => ({ id: 'ab12cd34ef56ab78', name: 'bodies', cluster: '127.0.0.1:9', client: '127.0.0.1:9', ...over });

/** `body` (a map) with one more key `x`: an array of `n` empty maps, or a string of `n` bytes. */
function withExtra(body: Record<string, unknown>, n: number, kind: Kind): Buffer {
  const head = Buffer.from(encodeBody(body));
  // msgpackr writes a map16 (de, count): one key more.
  if (head[0] !== 0xde) throw new Error('unexpected map header');
  head.writeUInt16BE(head.readUInt16BE(1) + 1, 1);
  const value = Buffer.alloc(5 + n, kind === 'empty maps' ? 0x80 : 0x78);
  value[0] = kind === 'empty maps' ? 0xdd : 0xdb; // array32 / str32
  value.writeUInt32BE(n, 1);
  return Buffer.concat([head, Buffer.from([0xa1, 0x78]), value]);
}

type Kind = 'empty maps' | 'string';

/**
 * This process's CPU (the node and the raw peer), µs, for 3 rounds of
 * `frames(kind)` up to the node's PONG: the cheapest of 3 attempts for each
 * kind, so the test compares CPU, not speed.
 */
async function cheapestCpu(peer: RawClient, frames: (kind: Kind) => FrameSpec[]): Promise<Record<Kind, number>> {
  const cpuFor = async (kind: Kind): Promise<number> => {
    const specs = frames(kind);
    const t0 = process.cpuUsage();
    for (let i = 0; i < 3; i++) peer.send(...specs);
    await peer.flush(60_000);
    const t = process.cpuUsage(t0);
    return t.user + t.system;
  };
  const bombs: number[] = [];
  const plains: number[] = [];
  for (let i = 0; i < 3; i++) {
    bombs.push(await cpuFor('empty maps'));
    plains.push(await cpuFor('string'));
  }
  return { 'empty maps': Math.min(...bombs), string: Math.min(...plains) };
}

describe("a peer's control bodies are bounded in maps and arrays before they are decoded (thirteenth session)", () => {
  it('before authentication: a HELLO within 16 KiB holding 15,000 empty maps gets ERROR MB_ERR_BAD_BODY and is closed, no WELCOME', async () => {
    const a = await node();
    const c = await RawClient.connect(a.cluster.port, false);
    cleanup.push(() => c.close());
    c.send({ type: FrameType.HELLO, payload: withExtra({ v: [1, 1], peer: info(), nonce: newNonce() }, 15_000, 'empty maps') });
    const first = await c.waitFor((g) => g.type === FrameType.WELCOME || g.type === FrameType.ERROR);
    expect(first.typeName).toBe('ERROR');
    expect(first.error).toBe('MB_ERR_BAD_BODY');
    await c.waitClosed();
    // The same HELLO with a string of as many bytes in `x`: an unknown key, ignored.
    const ok = await RawClient.connect(a.cluster.port, false);
    cleanup.push(() => ok.close());
    ok.send({ type: FrameType.HELLO, payload: withExtra({ v: [1, 1], peer: info(), nonce: newNonce() }, 15_000, 'string') });
    expect((await ok.waitFor((g) => g.type === FrameType.WELCOME || g.type === FrameType.ERROR)).typeName).toBe('WELCOME');
  });

  it('an authenticated peer: INTEREST, PEERS, ERROR and an unread frame type of 1 MB of empty maps are refused unread, at the cost of as many bytes of string; the link stays and a dense INTEREST is taken', async () => {
    const a = await node();
    const me = info();
    const peer = await fakePeer(a, me, SECRET);
    cleanup.push(() => peer.close());
    const n = 1_000_000;
    const frames = (kind: Kind): FrameSpec[] => [
      { type: FrameType.INTEREST, payload: withExtra({ add: [] }, n, kind) },
      { type: FrameType.PEERS, payload: withExtra({ from: me.id, peers: [], links: [] }, n, kind) },
      { type: FrameType.ERROR, payload: withExtra({ code: 1000, message: 'x' }, n, kind) },
      { type: FrameType.UNSUB, correlation: 1, payload: withExtra({ max: 1 }, n, kind) },
    ];
    // Before: ~2.1 s for the rounds of bombs against ~70 ms.
    const cpu = await cheapestCpu(peer, frames);
    console.log(`3 rounds of 4 peer frames of ${n} bytes: empty maps ${cpu['empty maps'] / 1000} ms CPU, a string ${cpu.string / 1000} ms`);
    // Refused as bodies past their bound: said (throttled), the link kept.
    expect(a.lines.some((l) => l.startsWith('peer frame rejected') && l.includes('MB_ERR_BAD_BODY'))).toBe(true);
    expect(a.cluster.peers().find((p) => p.id === me.id)?.state).toBe('up');
    expect(cpu['empty maps'] / cpu.string).toBeLessThan(3);
    // The densest INTEREST a node writes ([id, pattern] of one character, 4 bytes an entry) is within its bound.
    const dense = Array.from({ length: 127 }, (_, i) => [i + 1, 'a']);
    peer.send({ type: FrameType.INTEREST, payload: encodeBody({ snap: true, add: dense }) });
    await until(() => remoteInterest(a) === 127, 'the dense INTEREST taken');
  });

  it("hop records a peer forwards (events on _TRACE.<id>) are decoded within their bound at the node whose client traces", async () => {
    const a = await node();
    const me = info({ id: 'cd12cd34ef56ab78' });
    const peer = await fakePeer(a, me, SECRET);
    cleanup.push(() => peer.close());
    // A client of a that traces: it owns the id, so records on _TRACE.<id> are read for it (core trace-guard.ts).
    const tracer = await RawClient.connect(a.node.port);
    cleanup.push(() => tracer.close());
    const id = '0123456789abcdef';
    tracer.sub(`_TRACE.${id}`, 1);
    tracer.send({ type: FrameType.PUB, topic: 'orders.new', flags: Flags.TRACE, ext: { trace: id }, payload: Buffer.from('t') });
    await tracer.flush();
    const n = 1_000_000;
    const record = (kind: Kind): Buffer => withExtra({ node: me.id, name: '', origin: a.node.id, hops: 1, topic: 'orders.new', from: 'client', in: 1, out: 2, to: [] }, n, kind);
    // Before: ~535 ms for the bombs against ~14 ms.
    const cpu = await cheapestCpu(peer, (kind) => [{ type: FrameType.PUB, topic: `_TRACE.${id}`, payload: record(kind) }]);
    console.log(`3 hop records of ${n} bytes from a peer: empty maps ${cpu['empty maps'] / 1000} ms CPU, a string ${cpu.string / 1000} ms`);
    expect(cpu['empty maps'] / cpu.string).toBeLessThan(3);
    // Records of the tracer's node with a long string in an unknown key still reach it (9, after a's own record of the
    // traced publish); those past the bound are no records (none).
    await until(() => tracer.events(`_TRACE.${id}`).length >= 10, 'the string records delivered to the tracer');
    await tracer.flush();
    expect(tracer.events(`_TRACE.${id}`).length).toBe(10);
  });
});
