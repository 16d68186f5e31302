import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, TraceFlags, context, createTraceState, propagation, trace, type Context, type ContextManager, type TextMapPropagator } from '@opentelemetry/api';
import { decodeBody } from '@meshbus/proto';
import { hopName, type TraceHop } from '@meshbus/core';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { freePortRange, spawnCliOnFreePorts, until, type CliProcess } from '@meshbus/testkit';

/**
 * Issue #16, traces: an application using @opentelemetry/api publishes inside
 * a span; the SDK puts the W3C trace context in the event's headers; two real
 * `meshbus start` processes (a mesh) with --otlp-endpoint each export a span
 * for their hop to a loopback OTLP/HTTP receiver run by this test. The spans
 * share the trace id, chain parent to child (app span → node A → node B), and
 * are named like the hop records `meshbus trace` shows.
 */

/** What an application's OpenTelemetry setup registers, reduced to what the test needs: async context and the W3C propagator. */
class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

const w3c: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (!sc) return;
    setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
    if (sc.traceState) setter.set(carrier, 'tracestate', sc.traceState.serialize());
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent', 'tracestate'],
};

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string; arrayValue?: { values: Array<{ stringValue: string }> } } }>;
}

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.intValue ?? v?.arrayValue?.values.map((x) => x.stringValue);
};

const spans: OtlpSpan[] = [];
const posts: Array<{ path: string; type: string | undefined; service: string[] }> = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    const doc = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue: string } }> }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
    for (const rs of doc.resourceSpans) {
      posts.push({ path: req.url ?? '', type: req.headers['content-type'], service: rs.resource.attributes.map((a) => `${a.key}=${a.value.stringValue}`) });
      for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
});

const nodes: CliProcess[] = [];
let a: string;
let b: string;
const clients: Client[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AlsContextManager());
  propagation.setGlobalPropagator(w3c);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const otlp = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  const common = ['--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--otlp-endpoint', otlp];
  const start = (name: string, seeds: string[]): Promise<{ p: CliProcess; ports: number }> =>
    spawnCliOnFreePorts({
      pick: () => freePortRange(2),
      args: (base) => ['start', '--name', name, '--port', String(base), '--cluster-port', String(base + 1), ...seeds, ...common],
      ready: (n) => n.err().includes('node listening'),
      what: `${name} to listen`,
      track: (n) => (nodes.push(n), n),
    });
  const nodeA = await start('node-a', []);
  const nodeB = await start('node-b', ['--seeds', `127.0.0.1:${nodeA.ports + 1}`]);
  a = `127.0.0.1:${nodeA.ports}`;
  b = `127.0.0.1:${nodeB.ports}`;
});

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const n of nodes) {
    n.child.kill('SIGTERM');
    await n.exited;
  }
  await new Promise<void>((r) => receiver.close(() => r()));
  context.disable();
  propagation.disable();
});

describe('OpenTelemetry across two nodes', () => {
  it('the SDK injects traceparent/tracestate; each node exports its hop span over OTLP/HTTP, chained and named like meshbus trace hops', async () => {
    const pub = await connect(a, { reconnect: false });
    const sub = await connect(b, { reconnect: false });
    clients.push(pub, sub);
    const got: Msg[] = [];
    sub.subscribe('orders.>', { callback: (m) => void got.push(m) });
    await sub.flush();
    // The mesh is up once node A routes to B's subscriber (probes carry no trace context).
    await until(async () => {
      pub.publish('orders.probe', 'p');
      await pub.flush();
      await new Promise((r) => setTimeout(r, 50));
      return got.length > 0;
    }, 'the mesh to route A → B');

    const traceId = randomBytes(16).toString('hex');
    const appSpan = randomBytes(8).toString('hex');
    const meshbusTrace = randomBytes(8).toString('hex');
    const hops: TraceHop[] = [];
    pub.subscribe(`_TRACE.${meshbusTrace}`, { callback: (m) => void hops.push(decodeBody(m.data) as unknown as TraceHop) });
    await pub.flush();
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: appSpan, traceFlags: TraceFlags.SAMPLED, traceState: createTraceState('app=1') });
    context.with(parent, () => pub.publish('orders.eu', 'traced', { trace: meshbusTrace, headers: { kind: 'order' } }));
    await pub.flush();
    await until(() => got.some((m) => m.topic === 'orders.eu'), 'the traced event at B');
    const m = got.find((x) => x.topic === 'orders.eu')!;
    expect(m.headers).toEqual({ kind: 'order', traceparent: `00-${traceId}-${appSpan}-01`, tracestate: 'app=1' });

    await until(() => spans.filter((s) => s.traceId === traceId).length >= 2 && hops.length >= 2, 'two hop spans and two hop records', 10_000);
    const mine = spans.filter((s) => s.traceId === traceId).sort((x, y) => Number(attr(x, 'meshbus.hops')) - Number(attr(y, 'meshbus.hops')));
    expect(mine).toHaveLength(2);
    const [atA, atB] = mine as [OtlpSpan, OtlpSpan];
    expect(attr(atA, 'meshbus.node.name')).toBe('node-a');
    expect(attr(atB, 'meshbus.node.name')).toBe('node-b');
    // Parent links: the application's span → node A's hop → node B's hop.
    expect(atA.parentSpanId).toBe(appSpan);
    expect(atB.parentSpanId).toBe(atA.spanId);
    expect(new Set([appSpan, atA.spanId, atB.spanId]).size).toBe(3);
    expect(atA.traceState).toBe('app=1');
    // Like meshbus trace's records, spans never name a client (issue #13: a trace leaked client ids).
    expect(attr(atA, 'meshbus.from')).toBe('client');
    expect(attr(atB, 'meshbus.from')).toBe(`peer ${String(attr(atA, 'meshbus.node.id'))}`);
    expect(attr(atA, 'meshbus.to')).toEqual([`peer ${String(attr(atB, 'meshbus.node.id'))}`]);
    expect(attr(atA, 'messaging.destination.name')).toBe('orders.eu');
    for (const s of mine) expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true);
    // The same hops as `meshbus trace` shows: same node ids, same names.
    hops.sort((x, y) => x.hops - y.hops);
    expect(mine.map((s) => s.name)).toEqual(hops.map((h) => hopName(h)));
    expect(mine.map((s) => attr(s, 'meshbus.node.id'))).toEqual(hops.map((h) => h.node));
    expect(mine.map((s) => attr(s, 'meshbus.from'))).toEqual(hops.map((h) => h.from));
    // Events without a traceparent (the probes) got no span.
    expect(spans.filter((s) => s.traceId !== traceId)).toEqual([]);
    expect(posts.every((p) => p.path === '/v1/traces' && p.type === 'application/json' && p.service.includes('service.name=meshbus'))).toBe(true);
  });

  it('an explicit traceparent header is kept; publishing outside any span adds none', async () => {
    const pub = await connect(a, { reconnect: false });
    const sub = await connect(a, { reconnect: false });
    clients.push(pub, sub);
    const got: Msg[] = [];
    sub.subscribe('plain.>', { callback: (m) => void got.push(m) });
    await sub.flush();
    const own = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), traceFlags: TraceFlags.SAMPLED });
    context.with(parent, () => pub.publish('plain.own', 'x', { headers: { traceparent: own } }));
    pub.publish('plain.none', 'y');
    await pub.flush();
    await until(() => got.length === 2, 'both events');
    expect(got.find((x) => x.topic === 'plain.own')!.headers).toEqual({ traceparent: own });
    expect(got.find((x) => x.topic === 'plain.none')!.headers).toBeUndefined();
    // Requests carry it too.
    let asked: Record<string, string> | undefined;
    sub.subscribe('svc.echo', { callback: (q) => void ((asked = q.headers), q.respond('ok')) });
    await sub.flush();
    const reply = await context.with(parent, () => pub.request('svc.echo', 'q'));
    expect(reply.string()).toBe('ok');
    expect(asked?.traceparent).toBe(`00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`);
    const noOtel = await connect(a, { reconnect: false, openTelemetry: false });
    clients.push(noOtel);
    context.with(parent, () => noOtel.publish('plain.off', 'z'));
    await noOtel.flush();
    await until(() => got.length === 3, 'the third event');
    expect(got[2]!.headers).toBeUndefined();
  });
});
