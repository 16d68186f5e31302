import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { MeshNode, freePort, parseTraceParent, silentLogger, startNode } from '../src/index.js';
import { RawClient } from '@meshbus/testkit';

/**
 * The node's OTLP/HTTP span export (otlp-export.ts) against a loopback
 * receiver: only events with a valid W3C traceparent get a span, malformed
 * headers are ignored, and a collector that is down never disturbs routing.
 * (Spans across two nodes: bin/test/cli-otel.test.ts.)
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

describe('parseTraceParent', () => {
  it('takes W3C traceparent values and refuses malformed ones', () => {
    expect(parseTraceParent({ traceparent: `00-${T}-${S}-01`, tracestate: 'a=1' })).toEqual({ traceId: T, spanId: S, flags: 1, state: 'a=1' });
    expect(parseTraceParent({ traceparent: `01-${T}-${S}-00-future` })?.traceId).toBe(T);
    for (const bad of [`ff-${T}-${S}-01`, `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T.toUpperCase()}-${S}-01`, `00-${T}-${S}-01-extra`, 'garbage', '']) {
      expect(parseTraceParent({ traceparent: bad }), bad).toBeUndefined();
    }
    expect(parseTraceParent(undefined)).toBeUndefined();
    expect(parseTraceParent({})).toBeUndefined();
  });
});

async function receiver(): Promise<{ url: string; spans: Array<{ traceId: string; parentSpanId: string; name: string }> }> {
  const spans: Array<{ traceId: string; parentSpanId: string; name: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: typeof spans }> }> };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`, spans };
}

async function node(otlpEndpoint: string, o: { drainTimeout?: number } = {}): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, name: 'solo', otlpEndpoint, ...o });
  cleanups.push(() => n.close());
  return n;
}

async function client(n: MeshNode): Promise<RawClient> {
  const c = await RawClient.connect(n.port);
  cleanups.push(() => c.close());
  return c;
}

describe('OTLP export', () => {
  it('exports a span only for events with a valid traceparent; bad headers are ignored, the connection kept', async () => {
    const r = await receiver();
    const n = await node(r.url);
    const sub = await client(n);
    sub.sub('x.>', 1);
    await sub.flush();
    const c = await client(n);
    const pub = (topic: string, headers?: Record<string, string>): void => c.send({ type: FrameType.PUB, topic, ...(headers ? { ext: { headers } } : {}), payload: Buffer.from('e') });
    pub('x.plain');
    pub('x.bad', { traceparent: 'not-a-traceparent' });
    pub('x.long', { traceparent: `00-${T}-${S}-01`.padEnd(600, '-') });
    pub('x.good', { traceparent: `00-${T}-${S}-01` });
    await c.flush();
    await sub.waitFor((g) => g.topic === 'x.good');
    await n.otlp!.flush();
    expect(r.spans.map((s) => [s.traceId, s.parentSpanId, s.name])).toEqual([[T, S, `${n.id} (solo)`]]);
    expect(sub.events().map((g) => g.topic)).toEqual(['x.plain', 'x.bad', 'x.long', 'x.good']);
    expect(c.got.filter((g) => g.type === FrameType.ERROR)).toEqual([]);
    expect(n.otlp!.exported).toBe(1);
  });

  it('keeps routing when the collector is down, counting the spans it could not send', async () => {
    const n = await node(`http://127.0.0.1:${await freePort()}`);
    expect(n.otlp!.url).toMatch(/\/v1\/traces$/);
    const sub = await client(n);
    sub.sub('y', 1);
    await sub.flush();
    const c = await client(n);
    for (let i = 0; i < 3; i++) c.send({ type: FrameType.PUB, topic: 'y', ext: { headers: { traceparent: `00-${T}-${S}-01` } }, payload: Buffer.from(String(i)) });
    await c.flush();
    await sub.waitFor(() => sub.events().length === 3);
    await n.otlp!.flush();
    expect(n.otlp!.failed).toBe(3);
    expect(n.otlp!.exported).toBe(0);
  });

  it('a graceful shutdown sends the spans still batched before it resolves (the CLI exits right after it)', async () => {
    const r = await receiver();
    const n = await node(r.url);
    const c = await client(n);
    c.send({ type: FrameType.PUB, topic: 'z', ext: { headers: { traceparent: `00-${T}-${S}-01` } }, payload: Buffer.from('e') });
    await c.flush();
    // The span waits in the exporter's batch (256 spans or 1 s); shutdown() used to leave it there.
    await n.shutdown();
    expect(r.spans.map((s) => s.traceId)).toEqual([T]);
    expect(n.otlp!.exported).toBe(1);
  });

  it('a collector that accepts and never answers: the spans waiting for it stay within maxQueue, the rest dropped and counted', async () => {
    const held = new Set<import('node:net').Socket>();
    const silent = createNetServer((s) => void held.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const n = await node(`http://127.0.0.1:${(silent.address() as { port: number }).port}/v1/traces`);
    // Before the node closes (its close sends what waits): every POST still waiting fails at once, and none connects again.
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          silent.close(() => r());
          for (const s of held) s.destroy();
        }),
    );
    const c = await client(n);
    // 20 batches' worth, more than the 4,096 spans (16 batches) the exporter holds.
    for (let i = 0; i < 20 * 256; i++) c.send({ type: FrameType.PUB, topic: 'w', ext: { headers: { traceparent: `00-${T}-${S}-01` } }, payload: Buffer.from('e') });
    await c.flush(20_000);
    expect(n.otlp!.dropped).toBeGreaterThanOrEqual(20 * 256 - 4096);
  }, 30_000);

  it('a collector that accepts and never answers: closing the node waits drainTimeout for the spans, not 10 s per batch', async () => {
    const held = new Set<import('node:net').Socket>();
    const silent = createNetServer((s) => void held.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          silent.close(() => r());
          for (const s of held) s.destroy();
        }),
    );
    const n = await node(`http://127.0.0.1:${(silent.address() as { port: number }).port}/v1/traces`, { drainTimeout: 500 });
    const c = await client(n);
    for (let i = 0; i < 16 * 256; i++) c.send({ type: FrameType.PUB, topic: 'w', ext: { headers: { traceparent: `00-${T}-${S}-01` } }, payload: Buffer.from('e') });
    await c.flush(20_000);
    c.close();
    // 16 batches waiting, one POST at a time of up to 10 s each: the close took minutes before.
    const t0 = Date.now();
    await n.close();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(n.otlp!.exported).toBe(0);
    expect(n.otlp!.failed).toBeGreaterThan(0);
  }, 30_000);

  it('refuses an otlpEndpoint that is not an http(s) URL at start', () => {
    expect(() => new MeshNode({ otlpEndpoint: 'udp://collector:4317', logger: silentLogger })).toThrow(/otlpEndpoint/);
  });
});
