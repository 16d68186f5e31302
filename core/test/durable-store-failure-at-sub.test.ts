import { expect, it } from 'vitest';
import type { Client, Position, Status } from '@meshbus/sdk';
import { FrameType, decodeSubAck } from '@meshbus/proto';
import { RawClient, nodeKit, ownRedisServers, until, type RedisServer } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../src/index.js';
import { statusClient } from './status-client.js';

/**
 * A store that fails a read a SUB needs (history for `since` / `recover`,
 * latest values) is unavailable, not a loss (SPEC 15, "Store deadline";
 * 15.3; 15.4). Our own redis-server, paused with SIGSTOP, never answers:
 * every read fails at the node's store deadline.
 *
 * Before (hostile review, F1): a SUB `since` made during the pause got an
 * ACK recovered = false with epoch '' and offset 0 (the node's failed read
 * taken as lost history), then jumped to the next live event: e4..e10, still
 * in the history, were never delivered, and the SDK, having stored the
 * epoch '' "position", resumed elsewhere "from now" and was told recovered =
 * true. (F3): latest values that could not be read were only logged: the
 * subscriber was never told. Now: ERROR MB_ERR_STORE_UNAVAILABLE on the sid,
 * the position kept; the SDK resumes from it again a second later.
 */
const kit = nodeKit<MeshNode>({ start: startNode });
const redis = ownRedisServers();

/** The store deadline of these nodes, ms (durable.writeTimeoutMs). */
const DEADLINE = 600;

const text = (m: { data: Uint8Array }): string => Buffer.from(m.data).toString();

type Durable = NonNullable<Parameters<typeof startNode>[0]>['durable'];

async function durableNode(server: RedisServer, prefix: string): Promise<MeshNode> {
  const durable: Durable = { redis: server.url, prefix, writeTimeoutMs: DEADLINE, topics: [{ pattern: 'h.>', history: { size: 1000 } }, { pattern: 'px.>', latest: true }] };
  const n = await kit.node({ durable });
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  return n;
}

/** Publishes e<from>..e<to> on h.t, acked; returns the position of each, by number. */
async function publish(c: Client, from: number, to: number): Promise<Map<number, Position>> {
  const at = new Map<number, Position>();
  for (let i = from; i <= to; i++) at.set(i, (await c.publish('h.t', `e${i}`, { ack: true }))!);
  return at;
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `e${from + i}`);
const errorsOn = (statuses: Status[], sid: number): string[] => statuses.flatMap((s) => (s.type === 'error' && s.sid === sid ? [s.error.code] : []));
const recoveries = (statuses: Status[]): Array<{ recovered: boolean; position: Position }> =>
  statuses.flatMap((s) => (s.type === 'recovery' ? [{ recovered: s.recovered, position: s.position }] : []));

it('SUB since while the store does not answer: ERROR MB_ERR_STORE_UNAVAILABLE on the sid, the position kept, and the SDK resumes from it once the store answers', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await durableNode(server, 'fail-since:');
  const pub = await statusClient(kit, n);
  const at = await publish(pub, 1, 10);
  const statuses: Status[] = [];
  const c = await statusClient(kit, n, statuses);
  const got: string[] = [];
  server.pause();
  const s = c.subscribe('h.t', { since: at.get(3)!, callback: (m) => void got.push(text(m)) });
  await until(() => errorsOn(statuses, s.sid).includes('MB_ERR_STORE_UNAVAILABLE'), 'ERROR MB_ERR_STORE_UNAVAILABLE on the sid', 5 * DEADLINE);
  // Not a loss: no ACK recovered = false, nothing delivered past the gap, the position the SUB asked for kept.
  expect(recoveries(statuses)).toEqual([]);
  expect(s.recovered).toBeUndefined();
  expect(s.position).toEqual(at.get(3));
  expect(s.isClosed).toBe(false);
  expect(got).toEqual([]);

  // The store answers again: the SDK's resume (no new event needed) gets every event after e3, then live ones.
  server.resume();
  await until(() => got.length >= 7, 'e4..e10 replayed', 10_000);
  await publish(pub, 11, 11);
  await until(() => got.length >= 8, 'e11 live', 5_000);
  expect(got).toEqual(range(4, 11));
  expect(recoveries(statuses).every((r) => r.recovered)).toBe(true);
  expect(s.recovered).toBe(true);
  expect(s.position).toEqual({ epoch: at.get(3)!.epoch, offset: 11 });
}, 20_000);

it('the node keeps the position itself: a raw client (no retry) gets the ERROR, no ACK, then at the next live event the ACK recovered = true and the replay', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await durableNode(server, 'fail-raw:');
  const pub = await statusClient(kit, n);
  const at = await publish(pub, 1, 10);
  const raw = await RawClient.connect(n.port);
  kit.track({ close: () => raw.close() });
  server.pause();
  raw.sub('h.t', 7, { since: [at.get(3)!.epoch, 3] });
  const err = await raw.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 7, 5 * DEADLINE);
  expect(err.error).toBe('MB_ERR_STORE_UNAVAILABLE');
  expect(err.payload.toString()).toContain(`position ["${at.get(3)!.epoch}", 3] kept`);
  expect(raw.got.filter((g) => g.type === FrameType.ACK)).toEqual([]);
  server.resume();
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  await publish(pub, 11, 12);
  await raw.waitUntil(() => raw.events('h.t').length >= 9, 'e4..e12', 10_000);
  expect(raw.events('h.t').map((g) => g.payload.toString())).toEqual(range(4, 12));
  expect(raw.events('h.t').every((g) => g.sid === 7)).toBe(true);
  const acks = raw.got.filter((g) => g.type === FrameType.ACK && g.correlation === 7).map((g) => decodeSubAck(g.payload));
  expect(acks).toEqual([{ recovered: true, epoch: at.get(3)!.epoch, offset: 3 }]);
}, 20_000);

it('a SUB "from now" whose first read failed: at the next live event, ACK recovered = true just before it, and that event', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await durableNode(server, 'fail-now:');
  const pub = await statusClient(kit, n);
  const at = await publish(pub, 1, 10);
  const raw = await RawClient.connect(n.port);
  kit.track({ close: () => raw.close() });
  server.pause();
  raw.sub('h.t', 9, { since: ['', 0] });
  const err = await raw.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 9, 5 * DEADLINE);
  expect(err.error).toBe('MB_ERR_STORE_UNAVAILABLE');
  server.resume();
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  await publish(pub, 11, 12);
  await raw.waitUntil(() => raw.events('h.t').length >= 2, 'e11, e12', 10_000);
  await new Promise((r) => setTimeout(r, 200));
  expect(raw.events('h.t').map((g) => g.payload.toString())).toEqual(range(11, 12));
  const acks = raw.got.filter((g) => g.type === FrameType.ACK && g.correlation === 9).map((g) => decodeSubAck(g.payload));
  expect(acks).toEqual([{ recovered: true, epoch: at.get(10)!.epoch, offset: 10 }]);
}, 20_000);

it('a resume during the outage, then a reconnect to another node before any new event: every event after the position, never recovered = true for a gap', async ({ skip }) => {
  const server = await redis.start({ skip });
  const a = await durableNode(server, 'fail-move:');
  const b = await durableNode(server, 'fail-move:');
  const pub = await statusClient(kit, b);
  const at = await publish(pub, 1, 10);
  const statuses: Status[] = [];
  const { connect } = await import('@meshbus/sdk');
  const c = kit.track(await connect([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], { reconnectBackoff: { base: 20, max: 100 } }));
  void (async () => {
    for await (const st of c.status()) statuses.push(st);
  })().catch(() => undefined);
  const got: string[] = [];
  server.pause();
  const s = c.subscribe('h.t', { since: at.get(3)!, callback: (m) => void got.push(text(m)) });
  await until(() => errorsOn(statuses, s.sid).includes('MB_ERR_STORE_UNAVAILABLE'), 'ERROR MB_ERR_STORE_UNAVAILABLE on the sid', 5 * DEADLINE);
  server.resume();
  await a.shutdown(); // the client moves to b and resumes there from its position
  await publish(pub, 11, 11);
  await until(() => got.length >= 8, 'e4..e11', 10_000);
  expect(got).toEqual(range(4, 11));
  expect(recoveries(statuses).every((r) => r.recovered && r.position.epoch === at.get(3)!.epoch)).toBe(true);
  expect(s.position).toEqual({ epoch: at.get(3)!.epoch, offset: 11 });
}, 20_000);

it('a background recheck the store fails is no loss: ERROR on the sid, recovered stays true, later events still come in order', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await durableNode(server, 'fail-recheck:');
  const pub = await statusClient(kit, n);
  const at = await publish(pub, 1, 3);
  const statuses: Status[] = [];
  const c = await statusClient(kit, n, statuses);
  const got: string[] = [];
  const s = c.subscribe('h.t', { since: at.get(1)!, callback: (m) => void got.push(text(m)) });
  await until(() => got.length >= 2 && s.recovered === true, 'e2, e3 replayed', 5_000);
  // The sequencer reads history again 300 ms and 1.5 s after going live (events this node may not have seen live).
  server.pause();
  await until(() => errorsOn(statuses, s.sid).includes('MB_ERR_STORE_UNAVAILABLE'), 'the recheck fails at the store deadline', 3_000 + 3 * DEADLINE);
  expect(recoveries(statuses).every((r) => r.recovered)).toBe(true);
  expect(s.recovered).toBe(true);
  expect(s.position).toEqual({ epoch: at.get(1)!.epoch, offset: 3 });
  server.resume();
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  await publish(pub, 4, 5);
  await until(() => got.length >= 4, 'e4, e5', 10_000);
  expect(got).toEqual(range(2, 5));
  expect(recoveries(statuses).every((r) => r.recovered)).toBe(true);
}, 20_000);

it('latest values the store does not answer: ERROR MB_ERR_STORE_UNAVAILABLE on each sid (literal and wildcard); the subscriptions stay live', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await durableNode(server, 'fail-latest:');
  const statuses: Status[] = [];
  const c = await statusClient(kit, n, statuses);
  await c.publish('px.eur', 'v1', { ack: true });
  server.pause();
  const literal: string[] = [];
  const wild: string[] = [];
  const s1 = c.subscribe('px.eur', { callback: (m) => void literal.push(text(m)) });
  const s2 = c.subscribe('px.>', { callback: (m) => void wild.push(text(m)) });
  await until(() => errorsOn(statuses, s1.sid).length > 0 && errorsOn(statuses, s2.sid).length > 0, 'an ERROR on each sid', 5 * DEADLINE);
  expect(errorsOn(statuses, s1.sid)).toEqual(['MB_ERR_STORE_UNAVAILABLE']);
  expect(errorsOn(statuses, s2.sid)).toEqual(['MB_ERR_STORE_UNAVAILABLE']);
  expect(s1.isClosed || s2.isClosed).toBe(false);
  server.resume();
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  await c.publish('px.eur', 'v2', { ack: true });
  await until(() => literal.includes('v2') && wild.includes('v2'), 'live events reach both', 5_000);
  expect(literal).toEqual(['v2']);
  expect(wild).toEqual(['v2']);
}, 20_000);
