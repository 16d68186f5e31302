/**
 * What clients and the log are told while Redis is gone, found by a newcomer
 * review: with ioredis's offline queue off, its own text ("Stream isn't
 * writeable and enableOfflineQueue options is false") reached the log of a
 * refused durable publish, a durable queue registration, a latest-value read
 * and a history read; a refused publish to a durable queue said "durable
 * store unavailable: durable store: durable store unavailable: redis not
 * reachable: …". Now each says "redis not reachable" (the driver's text kept
 * as a separate `driver` field). A redis-server of the test's own, on a free
 * port, stopped while the node runs.
 */
import { expect, it } from 'vitest';
import { requireRedisServer, startRedisServer, until, cleanups } from '@meshbus/testkit';
import { connect, type Client } from '@meshbus/sdk';
import { silentLogger, startNode, type Logger } from '../src/index.js';

const cleanup = cleanups();

/** ioredis's and BullMQ's own words for a lost connection, which a client or an operator reading `err` should not have to decode. */
const DRIVER_TEXT = /Stream isn't writeable|enableOfflineQueue|Connection is closed|ECONNREFUSED/;

it('with Redis gone, refusals and log lines say "redis not reachable", not the driver\'s text', async ({ skip }) => {
  requireRedisServer({ skip });
  const server = await startRedisServer();
  cleanup.push(() => server.stop());
  const logged: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const put = (o: object, msg?: string): void => void logged.push({ msg: msg ?? '', fields: o as Record<string, unknown> });
  const logger: Logger = { ...silentLogger, info: put, warn: put, error: put };
  const n = await startNode({
    port: 0,
    logger,
    durable: { redis: server.url, prefix: 'mbtest:words:', topics: [{ pattern: 'h.>', history: { size: 10 }, latest: true }] },
  });
  cleanup.push(() => n.close());
  const c: Client = await connect(`127.0.0.1:${n.port}`);
  cleanup.push(() => c.close());
  c.subscribe('work.a', { queue: 'a', durable: true, callback: () => {} });
  await until(() => (n.durability!.matcher.forTopic('work.a')?.queues.length ?? 0) > 0, 'queue registered');
  // Acked once Redis and the queue's connections are all up.
  await until(() => c.publish('work.a', 'one', { ack: true }).then(() => true, () => false), 'a durable queue publish acked');
  await c.publish('h.x', 'one', { ack: true });

  await server.stop();
  await until(() => logged.some((l) => l.msg.startsWith('redis connection lost')), 'the node to see Redis gone');
  const refusals: string[] = [];
  for (const [topic, opts] of [
    ['h.x', { ack: true }],
    ['work.a', { ack: true }],
    ['h.y', { ack: true, delay: 1000 }],
  ] as const) {
    const e = await c.publish(topic, 'two', opts).then(
      () => undefined,
      (err: unknown) => err as Error & { code?: string },
    );
    expect(e, `${topic} acked with Redis gone`).toBeDefined();
    expect(e!.code).toBe('MB_ERR_STORE_UNAVAILABLE');
    refusals.push(e!.message);
  }
  expect(refusals).toEqual(Array(3).fill('durable store unavailable: redis not reachable'));

  // A durable queue registration, a latest-value read and a history read while Redis is gone.
  const told: string[] = [];
  c.on('status', (s) => {
    if (s.type === 'error') told.push(s.error.message);
  });
  const queue = c.subscribe('work.b', { queue: 'b', durable: true, callback: () => {} });
  void queue.closed.then((e) => e && told.push(e.message));
  c.subscribe('h.>', { callback: () => {} });
  c.subscribe('h.x', { since: { epoch: 'e', offset: 0 }, callback: () => {} });
  const wanted = ['durable publish failed', 'durable queue registration failed', 'latest values unavailable', 'history read failed'];
  await until(() => wanted.every((w) => logged.some((l) => l.msg.startsWith(w))), `log lines: ${wanted.join(', ')}`);
  for (const l of logged) {
    if (l.fields.err === undefined) continue;
    expect(String(l.fields.err), `${l.msg}: ${JSON.stringify(l.fields)}`).not.toMatch(DRIVER_TEXT);
  }
  for (const w of wanted) expect(logged.find((l) => l.msg.startsWith(w))!.fields.err).toBe('redis not reachable');
  await until(() => told.some((m) => m.includes('durable queue: redis not reachable')), `the queue's refusal in words (told: ${told.join(' | ')})`);
  for (const m of told) expect(m).not.toMatch(DRIVER_TEXT);
});
