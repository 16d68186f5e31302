// Issue #15 (redesign, behaviour unchanged): the SDK client is a facade over
// an engine. What the new structure promises, checked against real nodes and
// the real sources: durable features are an opt-in import, a tick's frames
// reach the transport in one write (one batching layer), transports do not
// batch nor drop silently, the liveness rule is a pure module, no import
// cycle and no source file over 500 lines.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Fixture, until, url } from '@meshbus/testkit';
import { connect, type Client } from '../src/client.js';
import { durable } from '../src/durable.js';
import { Liveness } from '../src/heartbeats.js';
import { connect as nodeConnect, isMeshbusError, type Msg, type Transport } from '../src/index.js';
import { WsTransport, type WebSocketLike } from '../src/ws-transport.js';
import { tapTransport } from './helpers.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/** A TCP transport factory that records the chunk lists handed to send(). */
function recordingTransports(): { factory: () => Transport; sends: Uint8Array[][] } {
  const sends: Uint8Array[][] = [];
  const factory = (): Transport =>
    tapTransport({
      send: (chunks, next) => {
        sends.push(chunks);
        next();
      },
    });
  return { factory, sends };
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isMeshbusError(e) ? e.code : String(e);
  }
  return undefined;
}

describe('durable features are an opt-in import', () => {
  it('without `durable` the core client refuses ack/delay/since/recover/durable with MB_ERR_INVALID_ARGUMENT; plain publish works', async () => {
    const n = await fx.node();
    const { factory } = recordingTransports();
    const c: Client = fx.track(await connect(url(n), { transport: factory }));
    expect(codeOf(() => c.publish('a', 'x', { ack: true }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.publish('a', 'x', { delay: 10 }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.subscribe('a', { recover: true }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.subscribe('a', { since: { epoch: 'e', offset: 1 } }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.subscribe('a', { queue: 'q', durable: true }))).toBe('MB_ERR_INVALID_ARGUMENT');
    const got: string[] = [];
    c.subscribe('a', { callback: (m) => got.push(m.string()) });
    c.publish('a', 'plain');
    await c.flush();
    await until(() => got.length === 1);
    expect(got).toEqual(['plain']);
  });

  it('with `durable` (and in the Node entry by default) an acked publish is sent and answered by the node', async () => {
    // This node has no durability: it answers the acked publish with NACK MB_ERR_NOT_DURABLE
    // (issue #16: an ACK without a store would claim a durability it does not have).
    const n = await fx.node();
    const { factory } = recordingTransports();
    const withIt = fx.track(await connect(url(n), { transport: factory, durable }));
    await expect(withIt.publish('a', 'x', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
    const nodeEntry = fx.track(await nodeConnect(url(n)));
    await expect(nodeEntry.publish('a', 'y', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
  });
});

describe('one batching layer per write path', () => {
  it("a tick's frames, small and large (not copied), reach the transport in one send(), in order", async () => {
    const n = await fx.node();
    const sub = fx.track(await nodeConnect(url(n)));
    const got: Msg[] = [];
    sub.subscribe('b.>', { callback: (m) => got.push(m) });
    await sub.flush();
    const { factory, sends } = recordingTransports();
    const c = fx.track(await connect(url(n), { transport: factory }));
    await c.flush();
    const big = new Uint8Array(10_000).fill(7);
    const before = sends.length;
    c.publish('b.1', 'one');
    c.publish('b.2', big);
    c.publish('b.3', 'three');
    c.publish('b.4', big);
    await Promise.resolve();
    await Promise.resolve();
    expect(sends.length - before).toBe(1);
    // The large payloads are handed over as they are (no copy into the batch).
    expect(sends[before]!.filter((ch) => ch === big).length).toBe(2);
    await until(() => got.length === 4);
    expect(got.map((m) => m.topic)).toEqual(['b.1', 'b.2', 'b.3', 'b.4']);
    expect(new Uint8Array(got[1]!.data)).toEqual(big);
  });

  it('the WebSocket transport writes each send() at once as one message, and throws (does not drop) when it cannot', async () => {
    const sent: Uint8Array[] = [];
    let state = 0;
    const fake: WebSocketLike = {
      binaryType: '',
      get readyState() {
        return state;
      },
      bufferedAmount: 0,
      onopen: null,
      onmessage: null,
      onerror: null,
      onclose: null,
      send: (d) => void sent.push(d),
      close: () => {},
    };
    const t = new WsTransport(function FakeWs() {
      return fake;
    } as unknown as new (url: string) => WebSocketLike);
    const opened = t.connect({ scheme: 'ws', host: 'h', port: 1, path: '/', href: 'ws://h:1/' }, { timeout: 1000 });
    state = 1;
    fake.onopen?.({});
    await opened;
    t.send([new Uint8Array([1, 2]), new Uint8Array([3])]);
    t.send([new Uint8Array([4])]);
    expect(sent.map((m) => [...m])).toEqual([[1, 2, 3], [4]]);
    state = 3; // CLOSED, before the close event is delivered
    expect(codeOf(() => t.send([new Uint8Array([5])]))).toBe('MB_ERR_CONNECTION_CLOSED');
    expect(sent.length).toBe(2);
  });
});

describe('liveness is one pure rule', () => {
  it('a pure publisher (only PONGs come back) stays alive; silence after maxOut pings is stale; a frozen-timer gap probes', () => {
    const r = new Liveness({ interval: 1000, maxOut: 2, wakeTimeout: 200 });
    let now = 0;
    let last = 0;
    let count = 0;
    let next = r.start(now, count);
    const actions: string[] = [];
    // Drive the rule as a timer would: each PING is answered by a PONG 1 ms later, nothing else arrives.
    for (let i = 0; i < 30; i++) {
      now += next;
      const a = r.tick(now, last, count);
      actions.push(a.do);
      if (a.do === 'stale' || a.do === 'probe') break;
      if (a.do === 'ping') {
        last = now + 1;
        count++;
      }
      next = a.ms;
    }
    expect(actions).not.toContain('stale');
    expect(actions.filter((x) => x === 'ping').length).toBeGreaterThanOrEqual(10);
    // The node goes silent: maxOut unanswered pings, then stale.
    const silent: string[] = [];
    for (let i = 0; i < 5; i++) {
      now += next;
      const a = r.tick(now, last, count);
      silent.push(a.do);
      if (a.do !== 'ping' && a.do !== 'wait') break;
      next = a.ms;
    }
    expect(silent.filter((x) => x === 'ping').length).toBeLessThanOrEqual(2);
    expect(silent[silent.length - 1]).toBe('stale');
    const s = new Liveness({ interval: 1000, maxOut: 2, wakeTimeout: 200 });
    s.start(0, 0);
    expect(s.tick(60_000, 0, 0)).toEqual({ do: 'probe' });
    const ms = s.probe(0);
    expect(s.probeEnded(60_200, 0, ms).do).toBe('stale');
  });

  it('behind an upload: only the node\'s silence counts, up to (maxOut + 1) x max(interval, peer interval capped at 20 s); the PING\'s age up to ten times that', () => {
    // Pings every 500 ms; the node's interval `peer`; the oldest PING waits behind this end's backlog from t = 0.
    const drive = (peer: number | undefined, stuck: boolean, keepalive: boolean, probeAt?: number): { stale: number; actions: string[] } => {
      const r = new Liveness({ interval: 500, maxOut: 2, wakeTimeout: 200, peerInterval: peer });
      let now = 0;
      let last = 0;
      let count = 0;
      let next = r.start(now, count);
      const actions: string[] = [];
      while (now < 10_000_000) {
        now += next;
        // A node that sends keepalives (every 400 ms) but never answers: any byte used to count as an answer.
        if (keepalive) {
          last = now - (now % 400);
          count = Math.floor(now / 400);
        }
        if (probeAt !== undefined && now >= probeAt) {
          const ms = r.probe(count);
          probeAt = undefined;
          now += ms;
          const a = r.probeEnded(now, count, ms, stuck ? now : undefined);
          actions.push(`probe:${a.do}`);
          if (a.do === 'stale') return { stale: now, actions };
          next = a.ms;
          continue;
        }
        const a = r.tick(now, last, count, undefined, stuck ? now : undefined);
        actions.push(a.do);
        if (a.do === 'stale') return { stale: now, actions };
        next = a.ms;
      }
      return { stale: Infinity, actions };
    };
    // Not behind an upload: stale at 1.5 s, as before.
    expect(drive(20_000, false, false).stale).toBe(1500);
    // Behind it: 60 s with the node's default 20 s, no PING piled on after the first two.
    const held = drive(20_000, true, false);
    expect(held.stale).toBe(60_000);
    expect(held.actions.filter((a) => a === 'ping')).toHaveLength(2);
    // Keepalives from a node that never answers do not hide it for ever (the first version of this rule: never stale).
    const hostile = drive(20_000, true, true).stale;
    expect(hostile).toBeGreaterThanOrEqual(600_000);
    expect(hostile).toBeLessThan(601_000);
    // A node's interval counts at most 20 s (a WELCOME of 2^31 ms meant 74 days).
    expect(drive(2 ** 31 - 1, true, false).stale).toBe(60_000);
    // A probe (a stall, checkLiveness()) that hears nothing is not stale while the PING is younger than that.
    expect(drive(20_000, true, false, 700).actions).toContain('probe:wait');
    expect(drive(20_000, false, false, 700).actions).toContain('probe:stale');
  });
});

describe('source layout', () => {
  const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
  const imports = (f: string): string[] =>
    [...readFileSync(join(SRC, f), 'utf8').matchAll(/(?:import|export)[^'"]*?from\s+'\.\/([^']+)'/g)].map((m) => m[1]!.replace(/\.js$/, '.ts'));

  it('no source file is over 500 lines', () => {
    const long = files.filter((f) => readFileSync(join(SRC, f), 'utf8').split('\n').length > 500);
    expect(long).toEqual([]);
  });

  it('no import cycle (type-only imports included)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const d of imports(f)) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('client.ts is the facade: the session loop, correlation table, dispatcher and durable features live in their own modules', () => {
    const client = imports('client.ts');
    expect(client).toContain('engine.ts');
    expect(client).not.toContain('durable.ts');
    expect(imports('engine.ts')).toEqual(expect.arrayContaining(['session-loop.ts', 'dispatcher.ts', 'pending.ts']));
    expect(imports('engine.ts')).not.toContain('durable.ts');
  });
});
