import { describe, expect, it } from 'vitest';
import { seededRandom } from '@meshbus/testkit/property';
import { Flags, FrameDecoder, FrameType, codeFromNumber, decodeError, encodeBody, encodeFrame, type Frame, type FrameSpec } from '@meshbus/proto';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import type { Transport, TransportEvents } from '../src/transport.js';

// The same byte streams into a node as it is and into one whose publishRepeat declines every frame
// (the full path for each event: MeshNode.publish): every wire's frames (stamps aside) and every
// counter must match. Streams repeat headers with payloads under, at and over maxPayload, flags,
// extension blocks, reserved topics and header fields clients may not set, with subscription
// changes, 'drop', `max` and queue-group subscriptions among them, cut at random points. Any check
// added later to a client's PUB that reads something the header compare leaves out (SCAN_REPEAT)
// shows here. Written by the review of the repeated-header change (a helper attacking it).

class Wire {
  events!: TransportEvents;
  chunks: Uint8Array[] = [];
  closed = false;
  /** A wire that never takes anything: `buffered` grows with what is written. */
  stuck = false;
  written = 0;
  paused = false;
  push(chunk: Uint8Array): void {
    this.events.data(chunk);
  }
  rec(b: Uint8Array): void {
    this.chunks.push(Uint8Array.from(b));
    this.written += b.length;
  }
  frames(): string[] {
    const d = new FrameDecoder();
    const out: string[] = [];
    for (const c of this.chunks) d.push(c, (f) => out.push(norm(f)), (e) => out.push(`DECODE-ERR ${e.code}`));
    return out;
  }
}

function norm(f: Frame): string {
  if (f.type === FrameType.WELCOME) return 'WELCOME';
  if (f.type === FrameType.ERROR || f.type === FrameType.NACK) return `${f.typeName} ${codeFromNumber(decodeError(f.payload).code)} c=${f.correlation}`;
  if (f.type === FrameType.PUB || f.type === FrameType.REQ) {
    const p = Buffer.from(f.payload);
    return `${f.typeName} ${f.topic} fl=${f.flags} h=${f.hops}/${f.maxHops} c=${f.correlation} sid=${f.sid} ext=${f.extLen} len=${p.length} p=${p.subarray(0, 8).toString('hex')}`;
  }
  return `${f.typeName} c=${f.correlation}`;
}

let k = 1;
function attach(n: MeshNode, stuck = false): Wire {
  const w = new Wire();
  w.stuck = stuck;
  const host = `127.0.${k >> 8}.${k++ & 0xff}`;
  n.attach((ev) => {
    w.events = ev;
    const t: Transport = {
      remote: `${host}:1`,
      kind: 'tcp',
      get buffered() {
        return w.stuck ? w.written : 0;
      },
      write(c, tail) {
        if (w.closed) return;
        w.rec(c);
        if (tail) w.rec(tail);
      },
      writeRange(b, s, e) {
        if (w.closed) return;
        w.rec(b.subarray(s, e));
      },
      end() {
        if (w.closed) return;
        w.closed = true;
        setImmediate(() => ev.close());
      },
      destroy() {
        if (w.closed) return;
        w.closed = true;
        ev.close();
      },
      pause() {
        w.paused = true;
      },
      resume() {
        w.paused = false;
      },
    };
    return t;
  });
  return w;
}

const hello = (body: Record<string, unknown> = {}): Uint8Array => encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], ...body }) });
const sub = (topic: string, sid: number, body: Record<string, unknown> = {}): Uint8Array => encodeFrame({ type: FrameType.SUB, topic, correlation: sid, payload: encodeBody(body) });
const tick = (ms = 10): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two nodes with the same options: `fast` as committed, `slow` with publishRepeat disabled. */
async function twins(o: NodeOptions = {}): Promise<{ fast: MeshNode; slow: MeshNode; hits: { n: number }; close(): Promise<void> }> {
  const fast = await startNode({ port: 0, host: '127.0.0.1', logger: silentLogger, ...o });
  const slow = await startNode({ port: 0, host: '127.0.0.1', logger: silentLogger, ...o });
  (slow as unknown as { publishRepeat: () => boolean }).publishRepeat = () => false;
  const orig = fast.publishRepeat.bind(fast);
  const hits = { n: 0 };
  (fast as unknown as { publishRepeat: typeof orig }).publishRepeat = (from, f) => {
    const ok = orig(from, f);
    if (ok) hits.n++;
    return ok;
  };
  return { fast, slow, hits, close: async () => void (await Promise.all([fast.close(), slow.close()])) };
}

/** Counters of a node worth comparing. */
function counters(n: MeshNode): Record<string, number> {
  const s = n.stats as unknown as Record<string, unknown>;
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(s)) {
    if (typeof v === 'number') out[key] = v;
    else if (key === 'dropped' && v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) out[`dropped.${k2}`] = v2 as number;
  }
  delete out['connectionsTotal'];
  return out;
}

const concat = (specs: Array<FrameSpec | Uint8Array>): Uint8Array => Buffer.concat(specs.map((s) => (s instanceof Uint8Array ? s : encodeFrame(s))));

/** The same stream for both, a seed per case. */
const rng = seededRandom;

const MAXP = 64;

function base(r: () => number): FrameSpec {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const s: FrameSpec = { type: r() < 0.9 ? FrameType.PUB : FrameType.REQ, topic: pick(['a', 'a', 'a.b', 'b', 'c.d', '_INBOX.zz.1', 'deny.x', '_TRACE.0123456789abcdef']) };
  if (s.type === FrameType.REQ || r() < 0.05) s.ext = { reply: pick(['a', '_INBOX.q.1', 'deny.y']) };
  if (r() < 0.05) s.flags = Flags.ACK_REQUESTED;
  if (r() < 0.03) {
    s.flags = (s.flags ?? 0) | Flags.TRACE;
    if (r() < 0.5) s.ext = { ...(s.ext ?? {}), trace: '0123456789abcdef' };
  }
  if (r() < 0.03) s.hops = 1;
  if (r() < 0.03) s.sid = 3;
  if (r() < 0.03) s.maxHops = 17;
  if (r() < 0.03) s.maxHops = 0;
  if (r() < 0.03) s.timestamp = Date.now() + 10 * 60_000;
  if (r() < 0.1) s.correlation = 7;
  return s;
}

function stream(r: () => number, count: number): Uint8Array {
  const out: Array<FrameSpec | Uint8Array> = [];
  let i = 0;
  while (out.length < count) {
    const b = base(r);
    const reps = 1 + Math.floor(r() * 12);
    for (let j = 0; j < reps; j++) {
      const x = r();
      const len = x < 0.7 ? Math.floor(r() * 20) : x < 0.8 ? MAXP : x < 0.9 ? MAXP + 1 + Math.floor(r() * MAXP) : Math.floor(r() * MAXP);
      const payload = new Uint8Array(len);
      payload[0] = i & 0xff;
      payload[1] = (i >> 8) & 0xff;
      i++;
      out.push({ ...b, payload });
    }
    const y = r();
    if (y < 0.04) out.push({ type: FrameType.PING, correlation: 5 });
    else if (y < 0.06) out.push(sub('a', 100 + Math.floor(r() * 3)));
    else if (y < 0.08) out.push({ type: FrameType.UNSUB, correlation: 100 + Math.floor(r() * 3) });
    else if (y < 0.09) out.push(sub('b', 200, { slow: 'drop' }));
    else if (y < 0.1) out.push({ type: FrameType.UNSUB, correlation: 200 });
    else if (y < 0.11) out.push(sub('a', 300, { max: 1 + Math.floor(r() * 4) }));
    else if (y < 0.12) out.push(sub('a.*', 400, { q: 'g' }));
    else if (y < 0.13) out.push({ type: FrameType.UNSUB, correlation: 400 });
  }
  return concat(out);
}

function cut(r: () => number, b: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    const n = r() < 0.5 ? b.length - at : 1 + Math.floor(r() * 2000);
    parts.push(b.slice(at, Math.min(b.length, at + n)));
    at += n;
  }
  return parts;
}

interface Setup {
  wires: Wire[];
}

async function setup(n: MeshNode, stuck: boolean, helloBody: Record<string, unknown>, pubStuck = false): Promise<Setup> {
  const p = attach(n, pubStuck);
  const s1 = attach(n);
  const s2 = attach(n);
  const s3 = attach(n, stuck);
  p.push(hello(helloBody));
  for (const w of [s1, s2, s3]) w.push(hello());
  await tick(20);
  p.push(sub('a', 1));
  s1.push(sub('a', 1));
  s2.push(sub('>', 1));
  s3.push(sub('a.b', 1));
  s3.push(sub('a', 2));
  await tick(20);
  return { wires: [p, s1, s2, s3] };
}

describe('repeated headers: the same outcome as the full path', () => {
  for (const variant of ['plain', 'stuck receiver', 'rate limited', 'echo off', 'publisher stuck'] as const) {
    it(`random streams (${variant})`, async () => {
      let flagged = 0;
      for (let seed = 1; seed <= 10; seed++) {
        const opts = { maxPayload: MAXP, ...(variant === 'rate limited' ? { publishRate: 40, publishBurst: 60 } : {}), ...(variant === 'stuck receiver' || variant === 'publisher stuck' ? { maxPending: 3000 } : {}) };
        const t = await twins(opts);
        try {
          const hb = variant === 'echo off' ? { echo: false } : {};
          const a = await setup(t.fast, variant === 'stuck receiver', hb, variant === 'publisher stuck');
          const b = await setup(t.slow, variant === 'stuck receiver', hb, variant === 'publisher stuck');
          const r = rng(seed);
          const bytes = stream(r, 300);
          const parts = cut(r, bytes);
          for (const part of parts) {
            a.wires[0]!.push(part.slice());
            b.wires[0]!.push(part.slice());
          }
          await tick(30);
          flagged += t.hits.n;
          for (let i = 0; i < a.wires.length; i++) expect(a.wires[i]!.frames(), `seed ${seed} wire ${i}`).toEqual(b.wires[i]!.frames());
          expect(counters(t.fast), `seed ${seed}`).toEqual(counters(t.slow));
          expect(t.fast.topTopics.top(20)).toEqual(t.slow.topTopics.top(20));
          expect([...t.fast.connections()].map((c) => [c.msgsIn, c.msgsOut, c.bytesOut])).toEqual([...t.slow.connections()].map((c) => [c.msgsIn, c.msgsOut, c.bytesOut]));
        } finally {
          await t.close();
        }
      }
      expect(flagged).toBeGreaterThan(0);
    });
  }
});
