import { describe, expect, it } from 'vitest';
import { connect, type Msg, type Status } from '@meshbus/sdk';
import { durableSuite, until, url } from '@meshbus/testkit';
import { startNode } from '../src/index.js';

/**
 * How a durable queue consumer settles its deliveries (thirty-second
 * session's review of the SDK). Real nodes, real Redis (the test's own when
 * none answers).
 *
 * 1. A settle after a failover: `msg.ack()` went on whatever connection was
 *    current, so a job delivered by node A was acked on node B under A's
 *    delivery id: B without durability answered MB_ERR_UNEXPECTED_FRAME, and
 *    B with durability could take the id as one of its own deliveries to
 *    this client (another job completed unprocessed). A delivery is now
 *    settled on the connection it came on only; A fails it at the close and
 *    it is retried.
 * 2. A consumer's `msg.nack(reason)` with a long reason (an
 * error's stack, a payload dump): the NACK's body went past the node's
 * bound (4,096 bytes, SPEC 10.10), so the node refused it (ERROR
 * MB_ERR_OUT_OF_RANGE with the delivery id as correlation) and the job was
 * not failed: it waited for the ack timeout. That ERROR's delivery id can
 * also be one of the client's sids, and a client ends a subscription on an
 * ERROR with its sid (SPEC 10.3). The SDK now cuts the reason to 1,000
 * UTF-16 units (not inside a surrogate pair): the NACK is taken, the job
 * retried after its backoff, no ERROR sent, every subscription left open.
 */
const suite = durableSuite({ start: startNode });

describe('a NACK with a long reason', () => {
  it('is taken: the job is retried after its backoff, not its ack timeout, and no subscription ends', async () => {
    const prefix = suite.prefix();
    const n = await suite.node({ durable: { redis: suite.redis().url, prefix, queues: { attempts: 2, backoffMs: 50, ackTimeoutMs: 60_000 } } });
    const c = await suite.client(n);
    const statuses: Status[] = [];
    c.on('status', (s) => statuses.push(s));
    // Plain subscriptions first: sids 1, 2, ... as small as the node's first delivery ids.
    const plain = Array.from({ length: 8 }, (_, i) => c.subscribe(`nk.plain.${i}`, { callback: () => {} }));
    const attempts: number[] = [];
    // ~6,000 bytes (the bound is 4,096), a 4-byte character (a surrogate pair) across the cut at 1,000.
    const reason = 'r'.repeat(999) + '\u{1F600}' + 'x'.repeat(5000);
    const consumer = c.subscribe('nk.jobs.>', {
      queue: 'w',
      durable: true,
      callback: (m: Msg) => {
        attempts.push(Date.now());
        if (attempts.length === 1) m.nack(reason);
        else m.ack();
      },
    });
    await c.flush();
    const pub = await suite.client(n);
    await pub.publish('nk.jobs.1', 'job', { ack: true });
    // Was: the second attempt only after ackTimeoutMs (60 s).
    await until(() => attempts.length === 2, 'the job retried after its NACK', 15_000);
    expect(statuses.filter((s) => s.type === 'error')).toEqual([]);
    expect(plain.every((s) => !s.isClosed)).toBe(true);
    expect(consumer.isClosed).toBe(false);
  }, 30_000);
});

describe('a settle after a failover', () => {
  it('is not sent to the node the client failed over to (its delivery id is the first node\'s)', async () => {
    const prefix = suite.prefix();
    const a = await suite.node({ durable: { redis: suite.redis().url, prefix, queues: { attempts: 3, backoffMs: 50, ackTimeoutMs: 60_000 } } });
    const b = await suite.node({});
    const c = await connect([url(a.port), url(b.port)], { randomize: false, reconnectBackoff: { base: 20, max: 100 } });
    try {
      const statuses: Status[] = [];
      c.on('status', (s) => statuses.push(s));
      const plain = c.subscribe('st.plain', { callback: () => {} });
      let held: Msg | undefined;
      let release = (): void => {};
      const gate = new Promise<void>((r) => (release = r));
      // A callback's delivery is settled when it returns (its promise settles): held until the failover.
      c.subscribe('st.jobs', { queue: 'w', durable: true, callback: (m: Msg) => ((held ??= m), gate) });
      await c.flush();
      const pub = await suite.client(a);
      await pub.publish('st.jobs', 'job', { ack: true });
      await until(() => held !== undefined, 'the job delivered by node A');
      await pub.close();
      await a.close();
      await until(() => c.isConnected && c.info?.node === b.id, 'the client on node B');
      held!.ack();
      release();
      await c.flush(); // B has read whatever was sent before this PING, and answered it
      // Was: ERROR MB_ERR_UNEXPECTED_FRAME from B, correlation = A's delivery id (here 1, also a sid).
      expect(statuses.filter((s) => s.type === 'error').map((s) => (s as { error: { code: string } }).error.code)).toEqual(['MB_ERR_NOT_DURABLE']);
      expect(plain.isClosed).toBe(false);
    } finally {
      await c.close();
    }
  }, 30_000);
});
