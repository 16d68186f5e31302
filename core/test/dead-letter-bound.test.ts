import { afterEach, expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { until } from '@meshbus/testkit';
import { ownDurableNode } from './own-durable-node.js';
import { bullPrefix, dlqName } from '../src/durable/queue-names.js';

/**
 * Dead letters are bounded like the queue they come from (queues.maxJobs),
 * the oldest dropped past it. Before, nothing bounded them: a consumer that
 * NACKs every job (a bug, or a consumer allowed to join the group and
 * hostile) moved each job to the group's dead-letter queue, where it waited
 * for ever with its event, while its room in the work queue's maxJobs was
 * free again: publishers went on and Redis grew without end (SPEC 15.8).
 * Own redis-server.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

it('a group whose consumer NACKs everything keeps at most maxJobs dead letters, the newest (was: every one, for ever)', async (ctx) => {
  const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'dl:', queues: { attempts: 1, maxJobs: 3, ackTimeoutMs: 120_000 } });
  const c = async (): Promise<Client> => {
    const x = await connect(`127.0.0.1:${n.port}`, { reconnect: false });
    cleanups.push(() => x.close());
    return x;
  };
  const watcher = await c();
  const dead: string[] = [];
  watcher.subscribe('_DLQ.g', { callback: (m) => void dead.push(Buffer.from(m.data).toString()) });
  await watcher.flush();
  const consumer = await c();
  consumer.subscribe('dl.>', {
    queue: 'g',
    durable: true,
    callback: () => {
      throw new Error('no thanks');
    },
  });
  await consumer.flush();
  const pub = await c();
  // One at a time (each within maxJobs), each NACKed and dead-lettered.
  for (let i = 0; i < 8; i++) {
    await until(async () => (await pub.publish('dl.x', `e${i}`, { ack: true }).then(() => true, () => false)), `publish e${i} taken`, 15_000);
    await until(() => dead.length === i + 1, `e${i} dead-lettered`, 15_000);
  }
  const key = `${bullPrefix('dl:')}:${dlqName('g')}`;
  await until(async () => (await r.llen(`${key}:wait`)) <= 3, 'dead letters trimmed', 10_000);
  const ids = await r.lrange(`${key}:wait`, 0, -1);
  const kept = await Promise.all(ids.map(async (id) => JSON.parse((await r.hget(`${key}:${id}`, 'data'))!) as { f: string }));
  const payloads = kept.map((d) => Buffer.from(d.f, 'base64').subarray(-2).toString()).sort();
  expect(payloads).toEqual(['e5', 'e6', 'e7']);
}, 90_000);
