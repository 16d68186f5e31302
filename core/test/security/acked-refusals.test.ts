/**
 * A PUB that asks for an ACK gets exactly one ACK or one NACK (SPEC 10.2),
 * whichever check refuses it: permission, rate limit, payload size, a bad
 * topic. Before, these refusals came as ERROR frames, so a publisher waiting
 * for its ack (`meshbus pub --ack`, the SDK's `publish(..., { ack: true })`)
 * waited its whole ack timeout (30 s) and was then told the event "may have
 * been stored".
 */
import { describe, expect, it } from 'vitest';
import { Flags, FrameType } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { connect } from '@meshbus/sdk';
import { silentLogger, startNode } from '../../src/index.js';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

const cleanup = cleanups();

const acked = (topic: string, correlation: number, payload = Buffer.from('x')) => ({ type: FrameType.PUB, topic, correlation, flags: Flags.ACK_REQUESTED, payload });

describe('refused acked publishes', () => {
  it('get a NACK with the refusal, one per PUB, never an ERROR: permission, rate limit (each answered)', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, jwt: { hs256Secret: SECRET }, publishRate: 1, publishBurst: 2, maxPayload: 1024 });
    cleanup.push(() => n.close());
    const c = await RawClient.connect(n.port, { token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['demo.>'] } } }) });
    cleanup.push(() => c.close());
    c.send(acked('other.x', 1)); // not allowed
    await c.flush();
    c.send(acked('demo.a', 2)); // takes the last token of the bucket (then NOT_DURABLE: no store on this node)
    c.send(acked('demo.b', 3)); // rate limited
    c.send(acked('demo.c', 4)); // rate limited: every acked PUB is answered, not one a second
    await c.flush();
    const codes = c.got.filter((g) => g.type === FrameType.NACK).map((g) => g.error);
    expect(codes).toEqual(['MB_ERR_PERMISSION_DENIED', 'MB_ERR_NOT_DURABLE', 'MB_ERR_RATE_LIMITED', 'MB_ERR_RATE_LIMITED']);
    expect(c.got.filter((g) => g.type === FrameType.NACK).map((g) => g.correlation)).toEqual([1, 2, 3, 4]);
    expect(c.got.filter((g) => g.type === FrameType.ERROR)).toEqual([]);
  });

  it('payload too large and a wildcard topic: NACK, the connection stays open', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, maxPayload: 1024 });
    cleanup.push(() => n.close());
    const c = await RawClient.connect(n.port);
    cleanup.push(() => c.close());
    c.send(acked('big', 7, Buffer.alloc(2048)));
    c.send(acked('a.*', 8));
    await c.flush();
    expect(c.got.filter((g) => g.type === FrameType.NACK).map((g) => [g.correlation, g.error])).toEqual([
      [7, 'MB_ERR_PAYLOAD_TOO_LARGE'],
      [8, 'MB_ERR_BAD_TOPIC'],
    ]);
    expect(c.got.filter((g) => g.type === FrameType.ERROR)).toEqual([]);
  });

  it('the SDK\'s acked publish is rejected with the refusal at once, not after its ack timeout', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, jwt: { hs256Secret: SECRET } });
    cleanup.push(() => n.close());
    const c = await connect(`meshbus://127.0.0.1:${n.port}`, { token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['demo.>'] } } }) });
    cleanup.push(() => c.close());
    c.on('status', () => {}); // the refusal is reported on the ack, not only as a status
    const t0 = Date.now();
    await expect(c.publish('other.x', 'hi', { ack: true, ackTimeout: 10_000 })).rejects.toMatchObject({ code: 'MB_ERR_PERMISSION_DENIED' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
