import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import {
  Flags,
  FrameType,
  decodeError,
  decodeSubAck,
  encodeBody,
  encodeFrame,
  type SubAckBody,
} from '@meshbus/proto';
import { Queue } from 'bullmq';
import { durableSuite, frameWithExt, type Got, RawClient, until } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { bullPrefix, queueName } from '../../src/durable/index.js';
import { startHttp } from '../../src/http/index.js';

/** The value of an unlabelled series in the node's /metrics, as an operator scrapes it. */
async function metric(n: MeshNode, name: string): Promise<number | undefined> {
  const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
  try {
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : undefined;
  } finally {
    await http.close();
  }
}

/**
 * Issue #13: bad input that reaches the durable store — from a client, a peer
 * or Redis itself — never crashes the node, never is stored, never corrupts
 * another subscriber's stream; recovery requests are paged and bounded.
 */

const suite = durableSuite({ start: startNode });
const { node } = suite;

type Durable = NonNullable<NodeOptions['durable']>;

function durable(topics: Durable['topics'], extra: Partial<Durable> = {}): Durable {
  return { redis: suite.redis().url, prefix: suite.prefix(), topics, ...extra };
}

/** The exact extension block of the report: msgpack {h: 5} — valid msgpack, invalid extension (headers must map strings). */
const POISON_EXT = Uint8Array.from([0x81, 0xa1, 0x68, 0x05]);

const raws: RawClient[] = [];
async function raw(n: MeshNode): Promise<RawClient> {
  const c = await RawClient.connect(n.port);
  raws.push(c);
  return c;
}

function subAcks(c: RawClient, sid: number): SubAckBody[] {
  return c.got.filter((g) => g.type === FrameType.ACK && g.correlation === sid && g.payload.length > 0).map((g) => decodeSubAck(g.payload));
}

function deliveries(c: RawClient, sid: number): string[] {
  return c.got.filter((g) => g.type === FrameType.PUB && g.sid === sid).map((g) => g.payload.toString());
}

/** The refusals `c` got (an ERROR, or the NACK of a PUB that asked for an ACK: SPEC 10.2). */
function errors(c: RawClient, correlation?: number): Got[] {
  return c.got.filter((g) => (g.type === FrameType.ERROR || g.type === FrameType.NACK) && (correlation === undefined || g.correlation === correlation));
}

/** The node still serves: a fresh connection gets its PING answered. */
async function alive(n: MeshNode): Promise<void> {
  const c = await raw(n);
  await c.flush();
  c.close();
}

async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(suite.redis().url, { maxRetriesPerRequest: 1 });
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function closeRaws(): void {
  for (const c of raws.splice(0)) c.close();
}

describe('ingress: the extension block of PUB and REQ is validated before anything routes or stores it (SPEC §8)', () => {
  it('the poison PUB of the report (ext 81 a1 68 05) is refused with 1011, never stored, and SUB latest / since afterwards keep the node up', async () => {
    const d = durable([{ pattern: 'poison.>', history: { size: 100 }, latest: true }]);
    const n = await node({ durable: d });
    try {
      const pub = await raw(n);
      pub.send({ type: FrameType.PUB, topic: 'poison.a', correlation: 7, flags: Flags.ACK_REQUESTED, payload: Buffer.from('good') });
      await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 7);
      const good = await n.durability!.historyStore.read('poison.a', n.durability!.cfg.topics[0]!, { epoch: '', offset: 0 });
      // without and with an ACK request
      pub.socket.write(frameWithExt({ type: FrameType.PUB, topic: 'poison.a', correlation: 11, payload: Buffer.from('bad') }, POISON_EXT));
      pub.socket.write(frameWithExt({ type: FrameType.PUB, topic: 'poison.a', correlation: 12, flags: Flags.ACK_REQUESTED, payload: Buffer.from('bad') }, POISON_EXT));
      await pub.flush();
      for (const corr of [11, 12]) {
        const e = errors(pub, corr);
        expect(e.map((g) => g.error)).toEqual(['MB_ERR_BAD_EXTENSION']);
        expect(e[0]!.type).toBe(corr === 12 ? FrameType.NACK : FrameType.ERROR);
        expect(decodeError(e[0]!.payload).code).toBe(1011);
      }
      // never stored: the history still ends at the good event, the latest value is the good one
      const after = await n.durability!.historyStore.read('poison.a', n.durability!.cfg.topics[0]!, { epoch: good.epoch, offset: 0 });
      expect(after.top).toBe(good.top);
      expect(after.events.map((e) => Buffer.from(e.frame.subarray(e.frame.length - 4)).toString())).toEqual(['good']);
      // the reads that crashed the node before: latest value and replay
      const sub = await raw(n);
      sub.sub('poison.>', 1);
      sub.sub('poison.a', 2, { since: [good.epoch, 0] });
      await until(() => deliveries(sub, 1).length === 1 && deliveries(sub, 2).length === 1, 'latest value and replay');
      expect(deliveries(sub, 1)).toEqual(['good']);
      expect(deliveries(sub, 2)).toEqual(['good']);
      await alive(n);
    } finally {
      closeRaws();
    }
  });

  it('a REQ with a malformed extension or without a reply topic is refused with 1011 (durable and plain topics)', async () => {
    const n = await node({ durable: durable([{ pattern: 'dur.>', history: { size: 100 } }]) });
    try {
      const c = await raw(n);
      c.sub('>', 9);
      await c.flush();
      let corr = 100;
      const sent: number[] = [];
      for (const topic of ['dur.q', 'plain.q']) {
        for (const flags of [0, Flags.ACK_REQUESTED]) {
          c.socket.write(frameWithExt({ type: FrameType.REQ, topic, correlation: ++corr, flags, payload: Buffer.from('x') }, POISON_EXT));
          sent.push(corr);
          c.send({ type: FrameType.REQ, topic, correlation: ++corr, flags, payload: Buffer.from('x') });
          sent.push(corr);
        }
      }
      await c.flush();
      for (const k of sent) expect(errors(c, k).map((g) => g.error)).toEqual(['MB_ERR_BAD_EXTENSION']);
      expect(c.events()).toEqual([]);
      expect(n.stats.protocolErrors).toBeGreaterThanOrEqual(sent.length);
    } finally {
      closeRaws();
    }
  });
});

describe('positions: only a node sets one (SPEC §15.1)', () => {
  it('a client PUB or REQ carrying a position is refused on durable and plain topics, with and without ACK request', async () => {
    const n = await node({ durable: durable([{ pattern: 'dur.>', history: { size: 100 } }]) });
    try {
      const c = await raw(n);
      c.sub('>', 9);
      await c.flush();
      const position = { epoch: '0123456789abcdef', offset: 999_999 };
      let corr = 200;
      const sent: number[] = [];
      for (const topic of ['dur.p', 'plain.p']) {
        for (const flags of [0, Flags.ACK_REQUESTED]) {
          c.send({ type: FrameType.PUB, topic, correlation: ++corr, flags, ext: { position }, payload: Buffer.from('x') });
          sent.push(corr);
          c.send({ type: FrameType.REQ, topic, correlation: ++corr, flags, ext: { position, reply: '_INBOX.me.1' }, payload: Buffer.from('x') });
          sent.push(corr);
        }
      }
      await c.flush();
      for (const k of sent) expect(errors(c, k).map((g) => g.error)).toEqual(['MB_ERR_BAD_EXTENSION']);
      expect(c.events()).toEqual([]);
      const r = await n.durability!.historyStore.read('dur.p', n.durability!.cfg.topics[0]!, { epoch: '', offset: 0 });
      expect(r.top).toBe(0);
    } finally {
      closeRaws();
    }
  });

  it('a forged position on a REQ does not reach a resuming subscriber: the acknowledged events after it are all delivered', async () => {
    const n = await node({ durable: durable([{ pattern: 'ledger.>', history: { size: 100 } }]) });
    try {
      const pub = await raw(n);
      pub.send({ type: FrameType.PUB, topic: 'ledger.x', correlation: 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from('e1') });
      await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 1);
      const sub = await raw(n);
      sub.sub('ledger.x', 5, { since: ['', 0] });
      await until(() => subAcks(sub, 5).length === 1, 'SUB ack');
      const epoch = subAcks(sub, 5)[0]!.epoch;
      pub.send({ type: FrameType.REQ, topic: 'ledger.x', correlation: 2, ext: { reply: '_INBOX.evil.1', position: { epoch, offset: 999_999 } }, payload: Buffer.from('forged') });
      for (let i = 2; i <= 4; i++) pub.send({ type: FrameType.PUB, topic: 'ledger.x', correlation: 10 + i, flags: Flags.ACK_REQUESTED, payload: Buffer.from(`e${i}`) });
      await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 14);
      await until(() => deliveries(sub, 5).length >= 3, 'the acknowledged events');
      await sub.flush();
      expect(deliveries(sub, 5)).toEqual(['e2', 'e3', 'e4']);
      expect(errors(pub, 2).map((g) => g.error)).toEqual(['MB_ERR_BAD_EXTENSION']);
      expect(subAcks(sub, 5).every((a) => a.recovered)).toBe(true);
    } finally {
      closeRaws();
    }
  });
});

describe('what comes back from Redis is untrusted: bad entries are skipped with a typed notice, the node stays up', () => {
  const TOPIC = 'store.t';
  const EPOCH = 'aaaaaaaaaaaaaaaa';
  const good = (s: string): Buffer => Buffer.from(encodeFrame({ type: FrameType.PUB, topic: TOPIC, payload: Buffer.from(s) }));

  async function seed(d: Durable): Promise<void> {
    const p = d.prefix!;
    const full = good('bad-ext');
    const badExt = Buffer.from(frameWithExt({ type: FrameType.PUB, topic: TOPIC, payload: Buffer.from('bad-ext') }, POISON_EXT));
    const entries: Buffer[] = [good('e1'), Buffer.from('garbage bytes, not a frame'), good('e3'), badExt, good('e5'), full.subarray(0, full.length - 3), good('e7')];
    await withRedis(async (r) => {
      await r.hset(`${p}m:{${TOPIC}}`, 'e', EPOCH, 'o', String(entries.length));
      for (let i = 0; i < entries.length; i++) await r.xadd(`${p}h:{${TOPIC}}`, `${i + 1}-0`, 'f', entries[i]!, 't', String(Date.now()));
      // Latest values: field l of each topic's meta hash, listed in the rule's topic set.
      await r.hset(`${p}m:{${TOPIC}}`, 'l', Buffer.concat([Buffer.from(`${EPOCH}|7|`), good('e7')]));
      await r.hset(`${p}m:{store.u}`, 'l', Buffer.concat([Buffer.from(`${EPOCH}|3|`), badExt]));
      await r.hset(`${p}m:{store.v}`, 'l', Buffer.from('no separators at all'));
      await r.sadd(`${p}lt:store.>`, TOPIC, 'store.u', 'store.v');
    });
  }

  it('SUB since replays the good entries in order and says which were skipped (ERROR 4010 on the sid)', async () => {
    const d = durable([{ pattern: 'store.>', history: { size: 100 }, latest: true }]);
    await seed(d);
    const n = await node({ durable: d });
    try {
      const c = await raw(n);
      c.sub(TOPIC, 3, { since: [EPOCH, 0], latest: false });
      await until(() => deliveries(c, 3).length === 4, 'the good entries');
      await c.flush();
      expect(deliveries(c, 3)).toEqual(['e1', 'e3', 'e5', 'e7']);
      const notices = errors(c, 3);
      expect(notices.map((g) => g.error)).toEqual(['MB_ERR_STORE_CORRUPT', 'MB_ERR_STORE_CORRUPT', 'MB_ERR_STORE_CORRUPT']);
      expect(notices.map((g) => decodeError(g.payload).message.match(/offset (\d+)/)?.[1])).toEqual(['2', '4', '6']);
      expect(subAcks(c, 3)).toEqual([{ recovered: true, epoch: EPOCH, offset: 0 }]);
      expect(n.stats.store.corrupt).toBe(3);
      expect(await metric(n, 'meshbus_store_corrupt_entries_total')).toBe(3);
      await alive(n);
    } finally {
      closeRaws();
    }
  });

  it('SUB latest delivers the good latest values and a notice for each unreadable one', async () => {
    const d = durable([{ pattern: 'store.>', history: { size: 100 }, latest: true }]);
    await seed(d);
    const n = await node({ durable: d });
    try {
      const c = await raw(n);
      c.sub('store.>', 4);
      await until(() => deliveries(c, 4).length === 1 && errors(c, 4).length === 2, 'latest values and notices');
      expect(deliveries(c, 4)).toEqual(['e7']);
      expect(errors(c, 4).map((g) => g.error)).toEqual(['MB_ERR_STORE_CORRUPT', 'MB_ERR_STORE_CORRUPT']);
      await alive(n);
    } finally {
      closeRaws();
    }
  });

  it('a meta hash with wrong field types is history lost: recovered=false with a fresh epoch and a notice, then live events flow', async () => {
    const d = durable([{ pattern: 'store.>', history: { size: 100 } }]);
    await withRedis(async (r) => {
      await r.hset(`${d.prefix}m:{${TOPIC}}`, 'e', 'not-an-epoch', 'o', 'abc');
      await r.xadd(`${d.prefix}h:{${TOPIC}}`, '1-0', 'f', good('old'), 't', '0');
    });
    const n = await node({ durable: d });
    try {
      const c = await raw(n);
      c.sub(TOPIC, 6, { since: ['not-an-epoch', 0] });
      await until(() => subAcks(c, 6).length === 1, 'SUB ack');
      const ack = subAcks(c, 6)[0]!;
      expect(ack.recovered).toBe(false);
      expect(ack.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(errors(c, 6).map((g) => g.error)).toEqual(['MB_ERR_STORE_CORRUPT']);
      const p = await raw(n);
      p.send({ type: FrameType.PUB, topic: TOPIC, correlation: 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from('new') });
      await p.waitFor((g) => g.type === FrameType.ACK && g.correlation === 1);
      await until(() => deliveries(c, 6).length === 1, 'live event');
      expect(deliveries(c, 6)).toEqual(['new']);
    } finally {
      closeRaws();
    }
  });
});

describe('durable queue jobs read back from Redis are untrusted too', () => {
  it('a job whose frame is garbage is dropped and counted; the consumer gets the good jobs and the node stays up', async () => {
    const d = durable([], {});
    const n = await node({ durable: d });
    const c = await suite.client(n);
    const got: string[] = [];
    c.subscribe('jobs.>', { queue: 'g', durable: true, callback: (m) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => (n.durability!.matcher.forTopic('jobs.a')?.queues.length ?? 0) > 0, 'queue registered');
    // A job written by someone else straight into the queue: not a frame, then a frame with the poison extension.
    const q = new Queue(queueName('jobs.>', 'g'), { connection: { url: suite.redis().url }, prefix: bullPrefix(d.prefix!) });
    try {
      await q.add('event', { f: Buffer.from('garbage').toString('base64'), topic: 'jobs.a' });
      await q.add('event', { f: Buffer.from(frameWithExt({ type: FrameType.PUB, topic: 'jobs.a', payload: Buffer.from('bad') }, POISON_EXT)).toString('base64'), topic: 'jobs.a' });
      await q.add('event', { nothing: true });
    } finally {
      await q.close();
    }
    const pub = await suite.client(n);
    await pub.publish('jobs.a', 'good', { ack: true });
    await until(() => got.includes('good'), 'the good job');
    await until(() => n.stats.store.corrupt === 3, 'the bad jobs counted');
    expect(got).toEqual(['good']);
    await alive(n);
  });
});

describe('corrupt delayed publishes', () => {
  it('a delayed job without a readable frame is dropped and counted at once, not retried; a good one is published', async () => {
    // Before: a job whose `f` was not a string threw a TypeError in the delayed worker: retried with
    // backoff (attempts times), never counted as corrupt.
    const d = durable([{ pattern: 'later.>' }], { queues: { attempts: 3, backoffMs: 60_000 } });
    const n = await node({ durable: d });
    const c = await suite.client(n);
    const got: string[] = [];
    c.subscribe('later.>', { callback: (m) => void got.push(Buffer.from(m.data).toString()) });
    await c.flush();
    const q = new Queue('delayed', { connection: { url: suite.redis().url }, prefix: bullPrefix(d.prefix!) });
    try {
      await q.add('publish', { f: 12345, topic: 'later.a', b: 10 });
      await q.add('publish', { nothing: true });
      await q.add('publish', { f: Buffer.from('garbage').toString('base64'), topic: 'later.a' });
      await until(() => n.stats.store.corrupt === 3, `the bad jobs counted (${n.stats.store.corrupt})`);
      await until(async () => {
        const k = await q.getJobCounts('waiting', 'delayed', 'active', 'failed');
        return Object.values(k).every((v) => v === 0);
      }, 'nothing left to retry');
    } finally {
      await q.close();
    }
    const pub = await suite.client(n);
    await pub.publish('later.a', 'good', { ack: true, delay: 10 });
    await until(() => got.includes('good'), 'the good delayed publish');
    await alive(n);
  });
});

describe('hostile ACK/NACK on durable queue deliveries', () => {
  it('a double ACK, a late NACK, an unknown id and another connection\'s ACK settle nothing twice: each job completes once, the node stays up', async () => {
    const n = await node({ durable: durable([], { queues: { attempts: 1 } }) });
    const c = await raw(n);
    c.sub('acks.>', 1, { q: 'a', durable: true });
    await until(async () => (n.durability!.matcher.forTopic('acks.x')?.queues.length ?? 0) > 0, 'queue registered');
    await c.flush();
    const other = await raw(n);
    const pub = await suite.client(n);
    await pub.publish('acks.x', 'j1', { ack: true });
    const d1 = await c.waitFor((g) => g.type === FrameType.PUB && g.sid === 1);
    // Someone else's connection tries to settle it first: not theirs.
    other.send({ type: FrameType.NACK, correlation: d1.correlation }, { type: FrameType.ACK, correlation: d1.correlation });
    await other.flush();
    c.send({ type: FrameType.ACK, correlation: d1.correlation }, { type: FrameType.ACK, correlation: d1.correlation }, { type: FrameType.NACK, correlation: d1.correlation });
    c.send({ type: FrameType.ACK, correlation: 0xfffffff0 }, { type: FrameType.NACK, correlation: 0 });
    await c.flush();
    await pub.publish('acks.x', 'j2', { ack: true });
    const d2 = await c.waitFor((g) => g.type === FrameType.PUB && g.sid === 1 && g.correlation !== d1.correlation);
    c.send({ type: FrameType.ACK, correlation: d2.correlation });
    await until(async () => (await n.durability!.backlog('acks.>', 'a')) === 0, 'both jobs completed');
    expect(deliveries(c, 1)).toEqual(['j1', 'j2']);
    expect(await n.durability!.deadLetters('a')).toHaveLength(0);
    await alive(n);
  });
});

describe('replays are paged and bounded', () => {
  async function fill(n: MeshNode, topic: string, count: number): Promise<string> {
    const c = await raw(n);
    for (let i = 1; i <= count; i++) c.send({ type: FrameType.PUB, topic, correlation: i, flags: i === count ? Flags.ACK_REQUESTED : 0, payload: Buffer.from(`e${i}`) });
    await c.waitFor((g) => g.type === FrameType.ACK && g.correlation === count, 15_000);
    const r = await n.durability!.historyStore.read(topic, n.durability!.cfg.topics[0]!, { epoch: '', offset: 0 });
    c.close();
    return r.epoch;
  }

  it('a replay reads history in pages of at most pageEvents events and delivers all of it in order', async () => {
    const n = await node({ durable: durable([{ pattern: 'page.>', history: { size: 1000 } }], { replay: { pageEvents: 10 } }) });
    try {
      const epoch = await fill(n, 'page.t', 95);
      const before = n.stats.store.replayPages;
      const c = await raw(n);
      c.sub('page.t', 1, { since: [epoch, 0] });
      await until(() => deliveries(c, 1).length === 95, 'the whole history');
      expect(deliveries(c, 1)).toEqual(Array.from({ length: 95 }, (_, i) => `e${i + 1}`));
      expect(n.stats.store.replayPages - before).toBeGreaterThanOrEqual(10);
    } finally {
      closeRaws();
    }
  });

  it('the 5th replay in progress on one connection is refused with MB_ERR_TOO_MANY_REPLAYS; once they finish a new one is accepted', async () => {
    const n = await node({ durable: durable([{ pattern: 'rp.>', history: { size: 1000 } }]) });
    try {
      const epoch = await fill(n, 'rp.t', 20);
      const c = await raw(n);
      // one write: the five SUBs are handled before any history read returns
      c.socket.write(Buffer.concat([1, 2, 3, 4, 5].map((sid) => encodeFrame({ type: FrameType.SUB, topic: 'rp.t', correlation: sid, payload: encodeBody({ since: [epoch, 0] }) }))));
      await until(() => [1, 2, 3, 4].every((sid) => deliveries(c, sid).length === 20), 'four replays');
      await c.flush();
      expect(errors(c, 5).map((g) => g.error)).toEqual(['MB_ERR_TOO_MANY_REPLAYS']);
      expect(decodeError(errors(c, 5)[0]!.payload).code).toBe(2040);
      expect(deliveries(c, 5)).toEqual([]);
      expect(n.stats.store.replaysRefused).toBe(1);
      expect(await metric(n, 'meshbus_store_replays_refused_total')).toBe(1);
      c.sub('rp.t', 6, { since: [epoch, 0] });
      await until(() => deliveries(c, 6).length === 20, 'a replay after the others finished');
      expect(errors(c, 6)).toEqual([]);
    } finally {
      closeRaws();
    }
  });

  it('replays in progress on the node are bounded too (perNode)', async () => {
    const n = await node({ durable: durable([{ pattern: 'rn.>', history: { size: 1000 } }], { replay: { perConnection: 10, perNode: 2 } }) });
    try {
      const epoch = await fill(n, 'rn.t', 5);
      const c = await raw(n);
      c.socket.write(Buffer.concat([1, 2, 3].map((sid) => encodeFrame({ type: FrameType.SUB, topic: 'rn.t', correlation: sid, payload: encodeBody({ since: [epoch, 0] }) }))));
      await until(() => [1, 2].every((sid) => deliveries(c, sid).length === 5), 'two replays');
      await c.flush();
      expect(errors(c, 3).map((g) => g.error)).toEqual(['MB_ERR_TOO_MANY_REPLAYS']);
      expect(decodeError(errors(c, 3)[0]!.payload).message).toContain('on this node');
    } finally {
      closeRaws();
    }
  });
});

describe('replay bounds and the SDK', () => {
  it('an SDK client with more recovering subscriptions than the per-connection bound gets all of them: refused ones are asked again', async () => {
    const n = await node({ durable: durable([{ pattern: 'many.>', history: { size: 100 } }], { replay: { perConnection: 2 } }) });
    const pub = await suite.client(n);
    for (let t = 0; t < 6; t++) await pub.publish(`many.t${t}`, 'x', { ack: true });
    const c = await suite.client(n);
    const subs = Array.from({ length: 6 }, (_, t) => c.subscribe(`many.t${t}`, { recover: true }));
    await until(() => subs.every((s) => s.recovered === true), 'every subscription acknowledged');
    expect(n.stats.store.replaysRefused).toBeGreaterThan(0);
    // and they are live
    const got: string[] = [];
    c.subscribe('many.>', { callback: (m) => void got.push(m.topic) });
    await c.flush();
    await pub.publish('many.t5', 'live', { ack: true });
    await until(() => got.includes('many.t5'), 'live event');
  });
});
