/**
 * A log line something outside the node can cause once per event is said once
 * per kind a minute, with the count held back (told-recently.ts ThrottledLog).
 * Before: a Redis that stopped answering made "durable publish failed" once
 * per publish (48,000 lines in 24 s from one publisher), a client that
 * reconnected and fell behind again made "slow consumer disconnected" every
 * time, and made-up keys (1,025 addresses in turn) got past ToldRecently's
 * "once per key" by pushing each other out of its memory.
 */
import { describe, expect, it } from 'vitest';
import { RawClient, nodeKit, ownRedisServers, until } from '@meshbus/testkit';
import { connect } from '@meshbus/sdk';
import { ThrottledLog, ToldRecently, jsonLogger, startNode, type Logger, type MeshNode } from '../src/index.js';
import { startHttp } from '../src/http/index.js';

const kit = nodeKit<MeshNode>({ start: startNode });
const redis = ownRedisServers();

/** src's jsonLogger, not the testkit's logCapture (core's dist): the HTTP API makes its pino (pinoOf) only for loggers of its own module. */
function capture(): { logger: Logger; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = jsonLogger('info', {}, (l) => void lines.push(l));
  return { logger, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('ToldRecently', () => {
  it('made-up keys: at most max + 1 lines per window, whatever the number of keys', () => {
    const told = new ToldRecently(60_000, 16);
    let said = 0;
    for (let i = 0; i < 5_000; i++) if (told.due(`10.0.${i >> 8}.${i & 255}`, 1_000)) said++;
    expect(said).toBe(17);
    // A minute later the window is over: keys are said again (and expired ones make room).
    let later = 0;
    for (let i = 0; i < 100; i++) if (told.due(`10.1.0.${i}`, 61_001)) later++;
    expect(later).toBeGreaterThanOrEqual(16);
  });

  it('tell() counts what it held back: 0 the first time, then the repeats since the last line', () => {
    const told = new ToldRecently(1_000);
    expect(told.tell('k', 0)).toBe(0);
    for (let t = 1; t <= 9; t++) expect(told.tell('k', t)).toBeUndefined();
    expect(told.tell('k', 1_000)).toBe(9);
    expect(told.tell('k', 1_001)).toBeUndefined();
  });
});

describe('ThrottledLog', () => {
  it('one line per kind per window, the next one carrying `suppressed`', async () => {
    const { logger, records } = capture();
    const log = new ThrottledLog(logger, 100);
    for (let i = 0; i < 1_000; i++) log.warn({ topic: `t.${i}` }, 'durable publish failed');
    log.error({}, 'other kind');
    expect(records().map((r) => [r.msg, r.topic, r.suppressed])).toEqual([
      ['durable publish failed', 't.0', undefined],
      ['other kind', undefined, undefined],
    ]);
    await new Promise((r) => setTimeout(r, 120));
    log.warn({ topic: 't.last' }, 'durable publish failed');
    expect(records()[2]).toMatchObject({ level: 'warn', msg: 'durable publish failed', topic: 't.last', suppressed: 999, throttled: 'said at most every 0.1 s' });
  });
});

describe('lines a client or a silent Redis can cause', () => {
  it('a silent Redis: 300 failed durable publishes make one "durable publish failed" line, not 300', async ({ skip }) => {
    const server = await redis.start({ skip });
    const { logger, records } = capture();
    const n = await kit.node({ logger, durable: { redis: server.url, prefix: 'throttle:', topics: [{ pattern: 'stored.>', history: { size: 100 } }], writeTimeoutMs: 300 } });
    await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
    const c = await connect(`127.0.0.1:${n.port}`);
    await c.publish('stored.a', 'before', { ack: true });
    server.pause();
    const acks = [];
    for (let i = 0; i < 300; i++) acks.push(c.publish('stored.a', `during ${i}`, { ack: true, ackTimeout: 20_000 }).then(() => 'acked', (e: { code?: string }) => e.code));
    const outcomes = await Promise.all(acks);
    // Every publisher is still told, each on its own publish.
    expect(new Set(outcomes)).toEqual(new Set(['MB_ERR_STORE_UNAVAILABLE']));
    const lines = records().filter((r) => r.msg === 'durable publish failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', topic: 'stored.a', throttled: 'said at most every 60 s' });
    server.resume();
    await c.close();
  }, 30_000);

  it('a client that reconnects and is a slow consumer again: one line per host a minute', async () => {
    const { logger, records } = capture();
    const n = await kit.node({ logger, maxPending: 64 * 1024, maxStall: 200 });
    const pub = await RawClient.connect(n.port);
    for (let round = 1; round <= 3; round++) {
      const slow = await RawClient.connect(n.port, { name: `slow-${round}` });
      slow.sub('flood', 1, { slow: 'disconnect' });
      await slow.flush();
      slow.socket.pause();
      for (let i = 0; i < 400; i++) pub.pub('flood', Buffer.alloc(4096, 1));
      await pub.flush(10_000);
      await until(() => n.stats.slowConsumers === round, `slow consumer ${round}`, 10_000);
      slow.close();
    }
    const lines = records().filter((r) => r.msg === 'slow consumer disconnected');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name: 'slow-1', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    pub.close();
  }, 30_000);

  it('HTTP requests answered 5xx (no responders): one access line per status a minute, each caller still answered', async () => {
    const { logger, records } = capture();
    const n = await kit.node({ logger });
    const http = await startHttp(n, { port: 0, host: '127.0.0.1', logger: true });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await fetch(`${http.url}/v1/request/nobody.home?timeout=200`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' })).status);
      expect(new Set(statuses)).toEqual(new Set([503]));
      const lines = records().filter((r) => r.msg === 'http' && r.status === 503);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 'warn', method: 'POST', url: '/v1/request/nobody.home?timeout=200' });
    } finally {
      await http.close();
    }
  });
});

describe('ThrottledLog parties', () => {
  it('parties past the 1,024 remembered share one key per kind: another kind is still said at once', () => {
    const { logger, records } = capture();
    const log = new ThrottledLog(logger, 60_000);
    for (let i = 0; i < 3_000; i++) log.warn({ i }, 'slow consumer disconnected', 'slow consumer', `10.0.${i >> 8}.${i & 255}`);
    log.warn({}, 'durable publish failed', 'durable publish failed MB_ERR_STORE_UNAVAILABLE');
    log.warn({}, 'durable publish failed', 'durable publish failed MB_ERR_STORE_UNAVAILABLE');
    expect(records().filter((r) => r.msg === 'slow consumer disconnected')).toHaveLength(1_025);
    expect(records().filter((r) => r.msg === 'durable publish failed')).toHaveLength(1);
  });
});

describe('bugs told apart', () => {
  it('a client that hits one bug frame after frame does not hide another: a line per place a failure was thrown', async () => {
    const { logger, records } = capture();
    const n = await kit.node({ logger });
    // Two receivers that break the rule (deliver must not throw): two bugs, each of the same class.
    n.subscribeInternal('bug.a', () => {
      throw new TypeError('a broke');
    }, { label: 'bug a' });
    n.subscribeInternal('bug.b', () => {
      throw new TypeError('b broke');
    }, { label: 'bug b' });
    const c = await RawClient.connect(n.port);
    for (let i = 0; i < 50; i++) c.pub('bug.a', 'x');
    c.pub('bug.b', 'x');
    for (let i = 0; i < 50; i++) c.pub('bug.a', 'x');
    await c.flush();
    const lines = records().filter((r) => r.msg === 'internal error handling a frame');
    expect(lines.map((r) => r.err)).toEqual(['TypeError: a broke', 'TypeError: b broke']);
    c.close();
  });
});
