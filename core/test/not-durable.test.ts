import { describe, expect, it } from 'vitest';
import type { Client } from '@meshbus/sdk';
import { type NodeOptions } from '../src/index.js';
import { durableSuite, until } from '@meshbus/testkit';

/**
 * Issue #16: durable options on a topic nothing durable covers are a typed
 * error with a stable code (MB_ERR_NOT_DURABLE, 4020), never a silent no-op:
 * an acked or delayed publish is refused (NACK, not delivered), a `recover`
 * / `since` subscription ends with the error. On a node with Redis (a rule
 * for `hist.>` only) and on one without.
 */

const suite = durableSuite();
const { node, client } = suite;

function durable(topics: NonNullable<NodeOptions['durable']>['topics']): NodeOptions['durable'] {
  return { redis: suite.redis().url, prefix: suite.prefix(), topics };
}

/** A plain subscriber on `pattern` and what it got. */
async function watch(c: Client, pattern: string): Promise<string[]> {
  const got: string[] = [];
  c.subscribe(pattern, { callback: (m) => void got.push(`${m.topic}=${m.string()}`) });
  await c.flush();
  return got;
}

async function refusedEverywhere(c: Client, watcher: Client, got: string[], topic: string): Promise<void> {
  await expect(c.publish(topic, 'acked', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE', num: 4020 });
  await expect(c.publish(topic, 'later', { delay: 50, ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
  // Without `ack` the refusal arrives as an error status.
  const errors: string[] = [];
  const off = c.on('status', (s) => void (s.type === 'error' && errors.push(s.error.code)));
  c.publish(topic, 'later', { delay: 50 });
  await until(() => errors.length > 0, 'the refusal of a delayed publish');
  off();
  expect(errors).toEqual(['MB_ERR_NOT_DURABLE']);
  const recover = c.subscribe(topic, { recover: true });
  expect((await recover.closed)?.code).toBe('MB_ERR_NOT_DURABLE');
  // The async iterator of the refused subscription ends instead of waiting for events that never come.
  const it = recover[Symbol.asyncIterator]();
  await expect(it.next()).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
  const since = c.subscribe(topic, { since: { epoch: '', offset: 0 }, callback: () => {} });
  expect((await since.closed)?.code).toBe('MB_ERR_NOT_DURABLE');
  // Nothing refused was delivered; a plain publish still is, and the connection stays usable.
  c.publish(topic, 'plain');
  await c.flush();
  await watcher.flush();
  await until(() => got.length > 0, 'the plain event');
  expect(got).toEqual([`${topic}=plain`]);
}

describe('durable options where nothing durable covers the topic', () => {
  it('a node without redis refuses ack, delay, recover and since with MB_ERR_NOT_DURABLE', async () => {
    const n = await node({});
    const c = await client(n);
    const watcher = await client(n);
    const got = await watch(watcher, 'plain.>');
    await refusedEverywhere(c, watcher, got, 'plain.a');
    await expect(Promise.resolve(c.subscribe('plain.q', { queue: 'g', durable: true }).closed)).resolves.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
  });

  it('a node with redis refuses them on a topic its rules do not cover, and serves the covered one', async () => {
    const n = await node({ durable: durable([{ pattern: 'hist.>', history: { size: 100 } }]) });
    const c = await client(n);
    const watcher = await client(n);
    const got = await watch(watcher, 'plain.>');
    await refusedEverywhere(c, watcher, got, 'plain.b');
    // A wildcard cannot be resumed either.
    expect((await c.subscribe('hist.>', { recover: true }).closed)?.code).toBe('MB_ERR_NOT_DURABLE');
    // The covered topic works as before: a position, and a subscription that recovers.
    const p = await c.publish('hist.a', 'kept', { ack: true });
    expect(p?.offset).toBe(1);
    const s = c.subscribe('hist.a', { recover: true, callback: () => {} });
    await until(() => s.recovered !== undefined, 'the resume ACK');
    expect(s.recovered).toBe(true);
    expect(s.isClosed).toBe(false);
  });
});
