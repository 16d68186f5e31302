import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { ClientError, isMeshbusError } from '@meshbus/proto';
import { Backoff } from '../src/backoff.js';
import { JsonCodec, MsgpackCodec, RawCodec, StringCodec, toBytes } from '../src/codecs.js';
import { Emitter } from '../src/emitter.js';
import { Heartbeat } from '../src/heartbeats.js';
import { MemoryOutbox } from '../src/outbox.js';
import { QueuedIterator } from '../src/queued-iterator.js';
import { ServerPool, parseServer } from '../src/servers.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isMeshbusError(e) ? e.code : `not a MeshbusError: ${String(e)}`;
  }
  return undefined;
}

describe('parseServer', () => {
  it('reads TCP forms with the default port 4480', () => {
    expect(parseServer('127.0.0.1:5000').href).toBe('tcp://127.0.0.1:5000');
    expect(parseServer('localhost').href).toBe('tcp://localhost:4480');
    expect(parseServer('meshbus://n1.example:4481').href).toBe('tcp://n1.example:4481');
    expect(parseServer('tcp://n1:1')).toMatchObject({ scheme: 'tcp', host: 'n1', port: 1, path: '' });
    expect(parseServer('[::1]:4480')).toMatchObject({ host: '::1', port: 4480, href: 'tcp://[::1]:4480' });
    expect(parseServer('MESHBUS://h:2').scheme).toBe('tcp');
  });
  it('reads WebSocket URLs with their path and default ports', () => {
    expect(parseServer('ws://h')).toMatchObject({ scheme: 'ws', port: 80, path: '/', href: 'ws://h:80/' });
    expect(parseServer('wss://h/mb?x=1')).toMatchObject({ scheme: 'wss', port: 443, path: '/mb?x=1' });
    expect(parseServer('ws://h:8080/gw').href).toBe('ws://h:8080/gw');
  });
  it('refuses bad input with ClientError MB_ERR_INVALID_ARGUMENT', () => {
    for (const bad of ['', 'http://h:1', 'h:0', 'h:70000', 'h:x', 'tcp://h:1/path', 'a b:1', '://h']) {
      expect(code(() => parseServer(bad)), bad).toBe('MB_ERR_INVALID_ARGUMENT');
    }
    expect(code(() => parseServer(42 as unknown as string))).toBe('MB_ERR_INVALID_ARGUMENT');
  });
});

describe('ServerPool', () => {
  it('rotates, learns peers once, skips unsupported and bad ones', () => {
    const p = new ServerPool(['a:1', 'b:2'], { supports: (u) => u.scheme === 'tcp' });
    expect([p.next().host, p.next().host, p.next().host]).toEqual(['a', 'b', 'a']);
    expect(p.learn(['c:3', 'a:1', 'ws://w', 'not a url', 'meshbus://c:3']).map((u) => u.href)).toEqual(['tcp://c:3']);
    expect(p.list().map((u) => u.host)).toEqual(['a', 'b', 'c']);
  });
  it('avoids a draining server once while another exists, and honours prefer()', () => {
    const p = new ServerPool(['a:1', 'b:2', 'c:3']);
    p.avoid('tcp://a:1');
    expect(p.next().host).toBe('b');
    p.prefer('tcp://a:1');
    expect(p.next().host).toBe('a');
    const single = new ServerPool(['a:1']);
    single.avoid('tcp://a:1');
    expect(single.next().host).toBe('a');
  });
  it('ignores learned peers when asked and needs at least one server', () => {
    expect(new ServerPool(['a:1'], { ignoreLearned: true }).learn(['b:2'])).toEqual([]);
    expect(code(() => new ServerPool([]))).toBe('MB_ERR_INVALID_ARGUMENT');
  });
});

describe('Backoff (full jitter)', () => {
  it('grows the ceiling exponentially up to max', () => {
    const b = new Backoff({ base: 250, max: 20_000 });
    expect([0, 1, 2, 3, 6, 7, 100, 5000].map((n) => b.ceiling(n))).toEqual([250, 500, 1000, 2000, 16_000, 20_000, 20_000, 20_000]);
  });
  it('draws uniformly in [0, ceiling)', () => {
    expect(new Backoff({ random: () => 0 }).delay(5)).toBe(0);
    expect(new Backoff({ random: () => 0.999999 }).delay(0)).toBe(249);
    expect(new Backoff({ base: 100, max: 1000, random: () => 0.5 }).delay(3)).toBe(400);
    const b = new Backoff();
    for (let i = 0; i < 1000; i++) {
      const d = b.delay(i % 12);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(b.ceiling(i % 12));
    }
  });
});

describe('MemoryOutbox', () => {
  const e = (topic: string, n: number) => ({ topic, payload: new Uint8Array(n), at: 0 });
  it('keeps order and bounds by count', () => {
    const o = new MemoryOutbox({ maxMessages: 2 });
    o.add(e('a', 1));
    o.add(e('b', 1));
    expect(code(() => o.add(e('c', 1)))).toBe('MB_ERR_OUTBOX_FULL');
    expect(o.count).toBe(2);
    expect(o.takeAll().map((x) => x.topic)).toEqual(['a', 'b']);
    expect(o.count).toBe(0);
    expect(o.bytes).toBe(0);
  });
  it('bounds by bytes (topic + payload + headers) and stores nothing on refusal', () => {
    const o = new MemoryOutbox({ maxBytes: 10 });
    o.add(e('ab', 4)); // 6
    expect(code(() => o.add(e('c', 4)))).toBe('MB_ERR_OUTBOX_FULL'); // 6 + 5 > 10
    o.add(e('c', 3)); // 10
    expect(o.bytes).toBe(10);
    expect(code(() => o.add({ topic: 'x', payload: new Uint8Array(0), headers: { k: 'v' }, at: 0 }))).toBe('MB_ERR_OUTBOX_FULL');
    expect(o.clear()).toBe(2);
  });
  it('throws a ClientError', () => {
    const o = new MemoryOutbox({ maxMessages: 0 });
    expect(() => o.add(e('a', 0))).toThrow(ClientError);
  });
});

describe('codecs', () => {
  it('round-trips', () => {
    const v = { a: 1, b: ['x', null], c: 'é€😀' };
    expect(JsonCodec.decode(JsonCodec.encode(v))).toEqual(v);
    expect(MsgpackCodec.decode(MsgpackCodec.encode(v))).toEqual(v);
    expect(StringCodec.decode(StringCodec.encode('héllo'))).toBe('héllo');
    const raw = new Uint8Array([1, 2, 3]);
    expect(RawCodec.encode(raw)).toBe(raw);
    expect(RawCodec.decode(raw)).toBe(raw);
  });
  it('fails with ClientError MB_ERR_CODEC', () => {
    expect(code(() => JsonCodec.decode(new Uint8Array([0x7b])))).toBe('MB_ERR_CODEC');
    expect(code(() => StringCodec.decode(new Uint8Array([0xff])))).toBe('MB_ERR_CODEC');
    expect(code(() => MsgpackCodec.decode(new Uint8Array([0x92, 1])))).toBe('MB_ERR_CODEC');
    expect(code(() => JsonCodec.encode(undefined))).toBe('MB_ERR_CODEC');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(code(() => JsonCodec.encode(cyclic))).toBe('MB_ERR_CODEC');
    expect(code(() => RawCodec.encode('x' as unknown as Uint8Array))).toBe('MB_ERR_CODEC');
  });
  it('toBytes: bytes as is, strings as UTF-8, others need a codec', () => {
    const b = new Uint8Array([9]);
    expect(toBytes(b)).toBe(b);
    expect([...toBytes('hé')]).toEqual([0x68, 0xc3, 0xa9]);
    expect(toBytes(undefined).length).toBe(0);
    expect(code(() => toBytes({ a: 1 }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(JSON.parse(Buffer.from(toBytes({ a: 1 }, JsonCodec as never)).toString())).toEqual({ a: 1 });
  });
});

describe('Emitter and QueuedIterator', () => {
  it('emits to listeners until removed; a throwing listener does not stop the others', async () => {
    const failures: unknown[] = [];
    const em = new Emitter<{ s: number }>((e) => failures.push(e));
    const got: number[] = [];
    const off = em.on('s', (n) => got.push(n));
    em.on('s', () => {
      throw new Error('listener bug');
    });
    em.emit('s', 1);
    off();
    em.emit('s', 2);
    expect(got).toEqual([1]);
    expect(String(failures[0])).toContain('listener bug');
  });
  it('yields queued items, then ends; return() stops early', async () => {
    const q = new QueuedIterator<number>();
    q.push(1);
    q.push(2);
    setTimeout(() => {
      q.push(3);
      q.end();
    }, 5);
    const got: number[] = [];
    for await (const n of q) got.push(n);
    expect(got).toEqual([1, 2, 3]);
    let stopped = 0;
    const q2 = new QueuedIterator<number>();
    q2.onStop = () => stopped++;
    q2.push(1);
    q2.push(2);
    for await (const n of q2) if (n === 1) break;
    expect(stopped).toBe(1);
    expect(q2.done).toBe(true);
  });
  it('rejects a waiting consumer with the end error', async () => {
    const q = new QueuedIterator<number>();
    const p = q.next();
    q.end(new ClientError('MB_ERR_CONNECTION_CLOSED'));
    await expect(p).rejects.toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
  });
});

describe('Heartbeat', () => {
  it('pings when idle and declares the connection dead after 2 unanswered pings', () => {
    vi.useFakeTimers();
    try {
      let last = Date.now();
      const pings: number[] = [];
      let dead: string | undefined;
      const hb = new Heartbeat({ interval: 1000, maxOut: 2, wakeTimeout: 200 }, { lastReceived: () => last, receivedCount: () => 0, ping: () => pings.push(Date.now()), dead: (e) => (dead = e.code) });
      hb.start();
      vi.advanceTimersByTime(1000);
      expect(pings.length).toBe(1);
      vi.advanceTimersByTime(500);
      last = Date.now(); // the PONG arrived
      vi.advanceTimersByTime(500);
      expect(pings.length).toBe(1); // traffic within the interval: no ping
      vi.advanceTimersByTime(1500);
      expect(pings.length).toBe(3);
      expect(dead).toBeUndefined();
      vi.advanceTimersByTime(1000);
      expect(dead).toBe('MB_ERR_STALE_CONNECTION');
      hb.stop();
    } finally {
      vi.useRealTimers();
    }
  });
  it('keeps a connection that receives nothing but the PONGs (a pure publisher) alive', () => {
    vi.useFakeTimers();
    try {
      let clock = 1_000_000;
      let last = clock;
      let count = 0;
      let pings = 0;
      let dead: string | undefined;
      const hb = new Heartbeat(
        { interval: 1000, maxOut: 2, wakeTimeout: 200, now: () => clock },
        {
          lastReceived: () => last,
          receivedCount: () => count,
          // The PONG arrives 1 ms after each ping.
          ping: () => {
            pings++;
            last = clock + 1;
            count++;
          },
          dead: (e) => (dead = e.code),
        },
      );
      hb.start();
      for (let i = 0; i < 20; i++) {
        // Timers fire a little late: the last PONG is just over one interval old at the tick.
        clock += 1002;
        vi.advanceTimersByTime(1000);
      }
      expect(dead).toBeUndefined();
      expect(pings).toBeGreaterThanOrEqual(10);
      hb.stop();
    } finally {
      vi.useRealTimers();
    }
  });
  it('after a wall-clock jump (timers frozen), probes at once and fails fast', () => {
    vi.useFakeTimers();
    try {
      let clock = 1_000_000;
      const last = clock;
      const pings: number[] = [];
      let dead: string | undefined;
      const hb = new Heartbeat(
        { interval: 1000, maxOut: 2, wakeTimeout: 200, now: () => clock },
        { lastReceived: () => last, receivedCount: () => 0, ping: () => pings.push(clock), dead: (e) => (dead = e.code) },
      );
      hb.start();
      clock += 60_000; // slept a minute; the timer fires late
      vi.advanceTimersByTime(1000);
      expect(pings.length).toBe(1);
      vi.advanceTimersByTime(199);
      expect(dead).toBeUndefined();
      vi.advanceTimersByTime(1);
      expect(dead).toBe('MB_ERR_STALE_CONNECTION');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('browser-safe modules', () => {
  it('the core import graph (core.ts, browser.ts, mobile.ts) reaches no Node built-in and not ws', () => {
    const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');
    const seen = new Set<string>();
    const bad: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(src, file), 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'|import\s+'([^']+)'/g)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('./')) visit(spec.slice(2).replace(/\.js$/, '.ts'));
        else if (spec.startsWith('node:') || spec === 'ws' || !['@meshbus/proto', 'msgpackr'].includes(spec)) bad.push(`${file} -> ${spec}`);
      }
      if (/\b(Buffer|process|require)\b[.(]/.test(text)) bad.push(`${file} uses a Node global`);
    };
    visit('core.ts');
    visit('browser.ts');
    visit('mobile.ts');
    expect(bad).toEqual([]);
    expect(seen.has('lifecycle.ts')).toBe(true);
    expect(seen.has('client.ts') && seen.has('ws-transport.ts') && seen.has('outbox.ts')).toBe(true);
    expect(seen.has('tcp-transport.ts') || seen.has('node.ts')).toBe(false);
    // The durable features are an opt-in import for these entries (issue #15).
    expect(seen.has('durable.ts')).toBe(false);
  });
});
