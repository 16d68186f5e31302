import { describe, expect, it } from 'vitest';
import { FIXED_SIZE, FrameType, OFF, encodeFrame, resealHeader, topicHash, writeU32 } from '@meshbus/proto';
import { RawClient, RawWs, memoryNode, type RawFrames, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

/**
 * The permission decisions a JWT client's connection remembers
 * (auth/permissions.ts FrameDecisions) are bounded in bytes, not only in
 * entries: the publish check runs before the topic length check, so a client
 * can send topics far over maxTopicLength (up to 64 KiB, as long as the
 * frame fits maxFrameLength) and have them refused with a non-fatal
 * MB_ERR_BAD_TOPIC. The node must not keep a copy of each.
 */

const cleanup = cleanups();

/** A PUB on `topic` whose header carries `hash` (any value: the client chooses it), optionally with topic byte `i` set to `b`. */
function forged(topic: string, hash: number, correlation: number, patch?: [number, number]): Uint8Array {
  const f = encodeFrame({ type: FrameType.PUB, topic, correlation, payload: Buffer.from(topic) });
  writeU32(f, OFF.TOPIC_HASH, hash);
  if (patch) f[FIXED_SIZE + patch[0]] = patch[1];
  resealHeader(f, 0);
  return f;
}

/** A JWT node in this process with a WebSocket gateway; `connect` over `kind`. */
async function bed(kind: 'tcp' | 'ws'): Promise<(hello: Record<string, unknown>) => Promise<RawFrames & { raw(b: Uint8Array): void }>> {
  const n = await startNode({ port: 0, logger: silentLogger, jwt: { hs256Secret: SECRET } });
  cleanup.push(() => n.close());
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  cleanup.push(() => g.close());
  return async (hello) => {
    if (kind === 'tcp') {
      const c = await RawClient.connect(n.port, hello);
      cleanup.push(() => c.close());
      return Object.assign(c, { raw: (b: Uint8Array) => c.socket.write(b) });
    }
    const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello });
    cleanup.push(() => c.ws.terminate());
    return Object.assign(c, { raw: (b: Uint8Array) => c.ws.send(b) });
  };
}

const errorsOf = (c: RawFrames): Array<[string | undefined, number]> =>
  c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation]);

describe.each(['tcp', 'ws'] as const)('%s: remembered permission decisions', (kind) => {
  it('keep no copy of a topic over the length limit: 64 distinct 32 KiB topics leave the node\'s memory as it was', async () => {
    const node = await memoryNode({ jwt: { hs256Secret: SECRET } });
    cleanup.push(() => node.kill());
    const hello = { token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['orders.>'] } } }) };
    const c: RawFrames = kind === 'tcp' ? await RawClient.connect(node.port, hello) : await RawWs.connect(`ws://127.0.0.1:${node.wsPort}/`, { hello });
    cleanup.push(() => (c instanceof RawClient ? c.close() : (c as RawWs).ws.terminate()));
    await c.flush();
    const before = (await node.memory()).arrayBuffers;
    const long = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 64; i++) c.pub(`orders.${String(i).padStart(2, '0')}.${long}`, 'p', i + 1);
    await c.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 64);
    // Every one refused (too long), the connection still open.
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(Array(64).fill('MB_ERR_BAD_TOPIC'));
    await c.flush();
    const after = (await node.memory()).arrayBuffers;
    // 64 kept copies would be 2 MiB; the bound is 64 entries of at most DEFAULT_MAX_TOPIC (256) bytes each.
    expect(after - before).toBeLessThan(512 * 1024);
  });
});

describe.each(['tcp', 'ws'] as const)('%s: remembered permission decisions against a hostile client (held)', (kind) => {
  it('equal-length topics differing in the last byte, under one forged hash, alternate allowed and denied; so after 200 other topics', async () => {
    const connect = await bed(kind);
    const svc = await connect({ token: token({ sub: 'svc', exp: inSeconds(600) }) });
    svc.sub('orders.>', 1);
    await svc.flush();
    const perms = { publish: { allow: ['orders.>'], deny: ['orders.ab'] } };
    const c = await connect({ token: token({ sub: 'app', exp: inSeconds(600), permissions: perms }) });
    const h = topicHash(Buffer.from('orders.aa'));
    // The same low 30 bits with the top two flipped too: one map key.
    const hashes = [h, (h ^ 0xc0000000) >>> 0];
    let corr = 0;
    for (let i = 0; i < 8; i++) c.raw(forged(i % 2 === 0 ? 'orders.aa' : 'orders.ab', hashes[i % 4 < 2 ? 0 : 1]!, ++corr));
    for (let i = 0; i < 200; i++) c.pub(`orders.t${i}`, 'x', ++corr);
    c.raw(forged('orders.ab', h, ++corr));
    c.raw(forged('orders.aa', h, ++corr));
    // Not UTF-8 (0xff), twice: refused each time, never remembered as anything.
    c.raw(forged('orders.aa', h, ++corr, [8, 0xff]));
    c.raw(forged('orders.aa', h, ++corr, [8, 0xff]));
    await c.flush();
    await svc.waitFor((g) => g.correlation === 210);
    expect(errorsOf(c)).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 2],
      // An allowed topic under a wrong hash passes the permission check and is refused by routing.
      ['MB_ERR_BAD_HASH', 3],
      ['MB_ERR_PERMISSION_DENIED', 4],
      ['MB_ERR_PERMISSION_DENIED', 6],
      ['MB_ERR_BAD_HASH', 7],
      ['MB_ERR_PERMISSION_DENIED', 8],
      ['MB_ERR_PERMISSION_DENIED', 209],
      ['MB_ERR_BAD_TOPIC', 211],
      ['MB_ERR_BAD_TOPIC', 212],
    ]);
    expect(svc.events('orders.aa').map((g) => g.correlation)).toEqual([1, 5, 210]);
    expect(svc.events('orders.ab')).toHaveLength(0);
  });

  it('deliveries under one forged hash: a denied topic of the same length is filtered each time', async () => {
    const connect = await bed(kind);
    const pub = await connect({ token: token({ sub: 'pub', exp: inSeconds(600) }) });
    const c = await connect({ token: token({ sub: 'bob', exp: inSeconds(600), permissions: { subscribe: { allow: ['orders.>'], deny: ['orders.ab'] } } }) });
    c.sub('orders.>', 1);
    await c.flush();
    const h = topicHash(Buffer.from('orders.aa'));
    for (let i = 0; i < 6; i++) pub.raw(forged(i % 2 === 0 ? 'orders.aa' : 'orders.ab', h, 0));
    pub.pub('orders.end', 'end');
    await c.waitFor((g) => g.topic === 'orders.end');
    expect(c.events().map((g) => g.topic)).toEqual(['orders.aa', 'orders.aa', 'orders.aa', 'orders.end']);
  });
});
