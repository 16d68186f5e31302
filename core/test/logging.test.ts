import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonLogger, pinoOf, startNode, type MeshNode } from '../src/index.js';
import { loggerAt } from '../src/logger.js';
import { startHttp, type HttpServer } from '../src/http/index.js';
import { RawClient } from '@meshbus/testkit';

/**
 * Issue 16, one logger: one line format for the node and its HTTP API (pino's;
 * fastify logs through a pino instance on the node's sink); a slow-consumer
 * line names the client. Issue #15: the node writes that line without loading
 * pino (1.7 MB of an idle node's RSS).
 */

const nodes: MeshNode[] = [];
const servers: HttpServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
  for (const n of nodes.splice(0)) await n.close();
});

/** A jsonLogger whose lines are collected, parsed. */
function capture(level: Parameters<typeof jsonLogger>[0], base: object = {}) {
  const lines: string[] = [];
  const logger = jsonLogger(level, base, (l) => void lines.push(l));
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('jsonLogger', () => {
  it('writes one JSON object per line: string level, time in ms, pid, the base fields, the record, msg', () => {
    const { logger, lines, records } = capture('info', { node: 'abc' });
    const before = Date.now();
    logger.debug({ x: 0 }, 'not shown');
    logger.info({ x: 1 }, 'shown');
    logger.warn({}, 'also');
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const [a, b] = records();
    expect(a).toMatchObject({ level: 'info', pid: process.pid, node: 'abc', x: 1, msg: 'shown' });
    expect(a!.time).toBeGreaterThanOrEqual(before);
    expect(b).toMatchObject({ level: 'warn', msg: 'also' });
    expect(records()).toHaveLength(2);
  });

  it("writes pino's line: the same record through jsonLogger and through its pino instance differs only in time", () => {
    const { logger, lines } = capture('debug', { node: 'abc', name: 'édge "1"' });
    const record = { client: 'c1', remote: '127.0.0.1:5000', n: 3, ok: true, nested: { a: [1, 'two'] }, none: null, skip: undefined };
    logger.warn(record, 'a "quoted"\nmessage');
    pinoOf(logger)!.warn(record, 'a "quoted"\nmessage');
    logger.debug({}, 'bare');
    pinoOf(logger)!.debug({}, 'bare');
    logger.info({ x: 1 });
    pinoOf(logger)!.info({ x: 1 });
    const untimed = lines.map((l) => l.replace(/"time":\d+/, '"time":0'));
    expect(untimed).toHaveLength(6);
    expect(untimed[0]).toBe(untimed[1]);
    expect(untimed[2]).toBe(untimed[3]);
    expect(untimed[4]).toBe(untimed[5]);
  });

  it('an Error, a BigInt and a cycle in a record make a line, not a throw', () => {
    const { logger, records } = capture('info');
    const cycle: Record<string, unknown> = { a: 1 };
    cycle['self'] = cycle;
    const err = Object.assign(new Error('boom'), { code: 'E_BOOM' });
    logger.warn({ err, big: 10n ** 20n, cycle }, 'odd');
    const [r] = records();
    expect(r).toMatchObject({ level: 'warn', msg: 'odd', err: { type: 'Error', message: 'boom', code: 'E_BOOM' }, big: 100000000000000000000, cycle: { a: 1, self: '[Circular]' } });
    expect((r!.err as { stack: string }).stack).toContain('boom');
  });

  it("Errors as pino's serializer writes them, the same line as pino's: subclass, cause, an error that reaches itself, an Error as the record", () => {
    const { logger, lines } = capture('info', { node: 'e' });
    class QuotaError extends Error {}
    const self = Object.assign(new Error('loop'), { code: 'E_LOOP' }) as Error & { again?: unknown };
    self.again = self;
    const cases: object[] = [{ err: new QuotaError('full') }, { err: new Error('outer', { cause: new Error('inner') }) }, { err: self }, new Error('as record')];
    for (const c of cases) {
      logger.error(c);
      pinoOf(logger)!.error(c);
    }
    const untimed = lines.map((l) => l.replace(/"time":\d+/, '"time":0'));
    for (let i = 0; i < cases.length; i++) expect(untimed[2 * i], String(i)).toBe(untimed[2 * i + 1]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ err: { type: 'QuotaError', message: 'full' }, msg: 'full' });
    expect(JSON.parse(lines[2]!)).toMatchObject({ err: { message: 'outer: inner' } });
  });

  it('a record nothing can write (a getter or toJSON that throws, a hostile proxy, 20,000 levels deep) still makes a line, and a throwing sink does not reach the caller', () => {
    const { logger, records } = capture('info');
    const getter = Object.defineProperty({}, 'x', { enumerable: true, get: () => { throw new Error('getter'); } });
    const toJSON = { inner: { toJSON: () => { throw new Error('toJSON'); } } };
    const proxy = new Proxy({}, { ownKeys: () => { throw new Error('proxy'); } });
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 20_000; i++) deep = { d: deep };
    for (const r of [getter, toJSON, proxy, { deep }]) expect(() => logger.info(r, 'odd')).not.toThrow();
    expect(records().map((r) => r.msg)).toEqual(['odd', 'odd', 'odd', 'odd']);
    const throwing = jsonLogger('info', {}, () => { throw new Error('sink'); });
    expect(() => throwing.info({}, 'x')).not.toThrow();
  });

  it('a level not in LogLevel is a ConfigError, not a logger that writes nothing (jsonLogger and the HTTP API\'s loggerAt)', () => {
    expect(() => jsonLogger('trace' as 'info')).toThrow(expect.objectContaining({ code: 'MB_ERR_CONFIG' }));
    expect(() => loggerAt(jsonLogger('info'), 'verbose' as 'info')).toThrow(expect.objectContaining({ code: 'MB_ERR_CONFIG' }));
  });

  it('an err whose message getter throws still makes the line', () => {
    const { logger, records } = capture('info');
    const err = Object.defineProperty(new Error('x'), 'message', { get: () => { throw new Error('getter'); } });
    logger.error({ err });
    expect(records()).toHaveLength(1);
  });

  /** Runs `body` (a script logging through `log` while nothing reads its stderr), then one line more once stderr is read; its stderr lines. */
  async function withStuckStderr(body: string): Promise<string[]> {
    const core = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      const { jsonLogger } = await import(${JSON.stringify(core)});
      process.stderr; // makes fd 2 non-blocking, as any use of process.stderr does
      const log = jsonLogger('info', { node: 'n' });
      ${body}
      process.stdout.write('logged\\n');
      process.stdin.once('data', () => log.info({ i: 'last' }, 'after'));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.pause();
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the logging process exited (${code}) before its loop ended`)));
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stderr.resume();
    await new Promise((r) => setTimeout(r, 200));
    child.stdin.end('go\n');
    await new Promise((r) => child.once('close', r));
    return err.split('\n').filter(Boolean);
  }

  it('a stuck stderr costs one wait, not one a line: lines past it are dropped, counted and said once stderr takes lines again', async () => {
    // 3,000 lines are 300 KB, a pipe holds 64 KB: the loop ends while nothing reads stderr.
    const lines = await withStuckStderr(`for (let i = 0; i < 3000; i++) log.info({ i, pad: 'x'.repeat(60) }, 'small');`);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const written = recs.filter((r) => r.msg === 'small').length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(3000);
    expect(recs.find((r) => r.msg === 'log lines dropped: stderr stayed full')).toMatchObject({ level: 'warn', dropped: 3000 - written });
    expect(recs.at(-1)).toMatchObject({ msg: 'after', i: 'last' });
  });

  it('a line longer than the pipe (a socket pair here: ~200 KB) given up part-way is torn alone: the next line starts on a line of its own', async () => {
    const lines = await withStuckStderr(`log.info({ big: 'y'.repeat(2_000_000) }, 'big'); log.info({}, 'dropped');`);
    const bad = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(1);
    expect(bad[0]!.startsWith('{"level":"info"')).toBe(true);
    expect(JSON.parse(lines.at(-2)!)).toMatchObject({ msg: 'log lines dropped: stderr stayed full', dropped: 2 });
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: 'after' });
  });

  it('writes to stderr without loading pino', async () => {
    const core = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      const { jsonLogger } = await import(${JSON.stringify(core)});
      jsonLogger('info', { node: 'n' }).info({ x: 1 }, 'to stderr');
      console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/pino/'))));`;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    expect(JSON.parse(stderr)).toMatchObject({ level: 'info', node: 'n', x: 1, msg: 'to stderr' });
    expect(JSON.parse(stdout)).toEqual([]);
  });

  it("'silent' writes nothing", () => {
    const { logger, lines } = capture('silent');
    logger.error({}, 'x');
    expect(lines).toEqual([]);
  });
});

describe('one logger for the node and its HTTP API', () => {
  it('the HTTP API logs through the node\'s pino instance: same stream, same line shape', async () => {
    const { logger, records } = capture('info', { node: 'n1' });
    const node = await startNode({ port: 0, logger });
    nodes.push(node);
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', logger: true });
    servers.push(http);
    expect(pinoOf(logger)).toBeDefined();
    const r = await fetch(`${http.url}/v1/publish/a.b`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(r.status).toBe(200);
    const recs = records();
    expect(recs.find((x) => x.msg === 'node listening')).toMatchObject({ level: 'info', node: 'n1' });
    expect(recs.find((x) => x.msg === 'http api listening')).toMatchObject({ level: 'info', node: 'n1', port: http.port });
    expect(recs.find((x) => x.msg === 'http')).toMatchObject({ level: 'info', node: 'n1', method: 'POST', status: 200 });
  });

  it('a level given to the HTTP API applies to its records only', async () => {
    const { logger, records } = capture('info', { node: 'n2' });
    const node = await startNode({ port: 0, logger });
    nodes.push(node);
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', logger: 'debug' });
    servers.push(http);
    await fetch(`${http.url}/healthz`);
    // Probes log at debug: shown for the HTTP API at debug, through the node's stream.
    expect(records().find((x) => x.msg === 'http' && x.url === '/healthz')).toMatchObject({ level: 'debug', node: 'n2' });
    node.logger.debug({}, 'node debug');
    expect(records().some((x) => x.msg === 'node debug')).toBe(false);
  });
});

describe('what an unauthenticated caller can make the node log', () => {
  it('refusals that cost the caller nothing (no token 401, throttled 429) log at debug, and no record carries a whole long URL', async () => {
    const { logger, records } = capture('info', { node: 'n3' });
    const node = await startNode({ port: 0, logger, authThrottle: { maxFailures: 2 } });
    nodes.push(node);
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', logger: true, adminToken: 'admin-secret' });
    servers.push(http);
    const post = (auth?: string) =>
      fetch(`${http.url}/v1/publish/a.b?${'q'.repeat(8000)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...(auth ? { authorization: auth } : {}) }, body: 'x' });
    // Before, each was an info line of 8 KB: 16 connections wrote 50 MB of log a second.
    for (let i = 0; i < 20; i++) expect((await post()).status).toBe(401);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post('Bearer wrong')).status);
    expect(statuses).toEqual([403, 403, 429, 429, 429]);
    const lines = records().filter((x) => x.msg === 'http');
    // The wrong tokens, at most maxFailures per window per address, stay at info.
    expect(lines.map((x) => x.status)).toEqual([403, 403]);
    for (const x of lines) expect((x.url as string).length).toBeLessThan(300);
  });
});

describe('slow consumer', () => {
  it('the disconnect line names the client: id, remote address and its name', async () => {
    const { logger, records } = capture('info');
    const node = await startNode({ port: 0, logger, maxPending: 256 * 1024, maxStall: 200 });
    nodes.push(node);
    const slow = await RawClient.connect(node.port, { name: 'slowpoke' });
    clients.push(slow);
    slow.sub('flood', 1, { slow: 'disconnect' });
    await slow.flush();
    slow.socket.pause();
    const pub = await RawClient.connect(node.port);
    clients.push(pub);
    for (let i = 0; i < 2000; i++) pub.pub('flood', Buffer.alloc(4096, 1));
    await pub.flush(10_000);
    for (let i = 0; i < 500 && node.stats.slowConsumers === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const session = [...node.connections()].find((c) => c.name === 'slowpoke');
    const line = records().find((x) => x.msg === 'slow consumer disconnected');
    expect(line).toMatchObject({ level: 'warn', name: 'slowpoke', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/), client: expect.any(String) });
    if (session) expect(line!.client).toBe(session.clientId);
  });
});
