import { afterEach, describe, expect, it } from 'vitest';
import { Flags, FrameType, decodeBody } from '@meshbus/proto';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { startHttp } from '../../src/http/index.js';
import { TraceGuard, MAX_TRACES_PER_OWNER } from '../../src/trace-guard.js';
import { RawClient, RawWs, type RawFrames } from '@meshbus/testkit';

/**
 * Tracing against hostile clients on one node, over TCP and WebSocket (the
 * two-node case is in cluster/test/security-peers.test.ts): a hop record
 * names no client, and a trace id that every receiver of the traced event
 * learns gives none of them the records nor a way to add to them.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function bed(transport: 'tcp' | 'ws'): Promise<{ n: MeshNode; connect(): Promise<RawFrames> }> {
  const n = await startNode({ port: 0, logger: silentLogger });
  cleanups.push(() => n.close());
  let g: WsGateway | undefined;
  if (transport === 'ws') {
    g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    cleanups.push(() => g!.close());
  }
  return {
    n,
    async connect() {
      const c = g ? await RawWs.connect(`ws://127.0.0.1:${g.port}/`) : await RawClient.connect(n.port);
      cleanups.push(() => (c instanceof RawWs ? c.ws.terminate() : (c as RawClient).close()));
      return c;
    },
  };
}

const errorsOf = (c: RawFrames): Array<[string | undefined, number]> =>
  c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation]);

const traced = (topic: string, id: string, correlation = 0) => ({ type: FrameType.PUB, topic, correlation, flags: Flags.TRACE, ext: { trace: id }, payload: Buffer.from('t') });

describe.each(['tcp', 'ws'] as const)('tracing over %s', (transport) => {
  it('a hop record names the node and counts receivers, never a client id', async () => {
    const b = await bed(transport);
    const tracer = await b.connect();
    const sinks = [await b.connect(), await b.connect()];
    sinks[0]!.sub('orders.*', 1);
    sinks[1]!.sub('orders.new', 1, { q: 'workers' });
    const id = 'a1b2c3d4e5f60718';
    tracer.sub(`_TRACE.${id}`, 1);
    for (const c of [...sinks, tracer]) await c.flush();
    tracer.send(traced('orders.new', id));
    const rec = await tracer.waitFor((g) => g.topic === `_TRACE.${id}`);
    const hop = decodeBody(rec.payload);
    expect(hop.node).toBe(b.n.id);
    expect(hop.origin).toBe(b.n.id);
    expect(hop.from).toBe('client');
    expect([...(hop.to as string[])].sort()).toEqual(['client', 'client (group)']);
    // Not anywhere in the record: neither the receivers' ids, the tracer's own, nor the queue group's name.
    const text = rec.payload.toString('latin1');
    for (const c of [tracer, ...sinks]) expect(text).not.toContain(c.clientId);
    expect(text).not.toContain('workers');
  });

  it('a receiver that learned the trace id can neither read the trace nor add to it', async () => {
    const b = await bed(transport);
    const tracer = await b.connect();
    const sink = await b.connect();
    sink.sub('orders.*', 1);
    const id = '00ff00ff00ff00ff';
    tracer.sub(`_TRACE.${id}`, 1);
    await sink.flush();
    await tracer.flush();
    tracer.send(traced('orders.new', id));
    const ev = await sink.waitFor((g) => g.topic === 'orders.new');
    expect(ev.trace).toBe(id);
    await tracer.waitFor((g) => g.topic === `_TRACE.${id}`);

    // The sink reuses the id it saw: to subscribe to the records, and to publish "hops" into them.
    sink.sub(`_TRACE.${id}`, 2);
    sink.send(traced('orders.new', id, 31));
    sink.send({ ...traced('orders.new', id, 32), type: FrameType.REQ, ext: { trace: id, reply: `_INBOX.${sink.clientId}.1` } });
    await sink.flush();
    expect(errorsOf(sink)).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 2],
      ['MB_ERR_PERMISSION_DENIED', 31],
      ['MB_ERR_PERMISSION_DENIED', 32],
    ]);
    expect(b.n.stats.permissionDenied).toBe(3);
    // The tracer's next traced event: its records still come to it alone.
    tracer.send(traced('orders.new', id));
    await sink.waitFor((g) => g.topic === 'orders.new' && sink.events('orders.new').length === 2);
    await tracer.waitFor(() => tracer.events(`_TRACE.${id}`).length === 2);
    await tracer.flush();
    await sink.flush();
    expect(tracer.events(`_TRACE.${id}`).length).toBe(2);
    expect(sink.events().filter((g) => g.topic.startsWith('_TRACE')).length).toBe(0);
  });

  it('the id is free again once its owner is gone', async () => {
    const b = await bed(transport);
    const first = await b.connect();
    const id = '1234123412341234';
    first.sub(`_TRACE.${id}`, 1);
    await first.flush();
    (first instanceof RawWs ? first.ws.terminate() : (first as RawClient).close());
    await first.waitClosed();
    const deadline = Date.now() + 5000;
    while (b.n.traces.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const second = await b.connect();
    second.sub(`_TRACE.${id}`, 1);
    second.send(traced('x.y', id));
    await second.waitFor((g) => g.topic === `_TRACE.${id}`);
    expect(errorsOf(second)).toEqual([]);
  });
});

it('a refused SUB on a trace topic claims no trace id: another connection can still take it', async () => {
  // Before, the id was claimed before the SUB's bound checks: a SUB refused for its connection's limit
  // held the id until its connection closed, and the tracer's own SUB was refused PERMISSION_DENIED.
  const n = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 1 });
  cleanups.push(() => n.close());
  const full = await RawClient.connect(n.port);
  const tracer = await RawClient.connect(n.port);
  cleanups.push(() => full.close(), () => tracer.close());
  const id = '5678567856785678';
  full.sub('other', 1);
  full.sub(`_TRACE.${id}`, 2);
  await full.flush();
  expect(errorsOf(full)).toEqual([['MB_ERR_TOO_MANY_SUBSCRIPTIONS', 2]]);
  expect(n.traces.size).toBe(0);
  tracer.sub(`_TRACE.${id}`, 1);
  tracer.send(traced('x.y', id));
  await tracer.waitFor((g) => g.topic === `_TRACE.${id}`);
  expect(errorsOf(tracer)).toEqual([]);
});

it('POST /v1/trace: a client cannot reuse the HTTP trace id to read or forge its records', async () => {
  const n = await startNode({ port: 0, logger: silentLogger });
  cleanups.push(() => n.close());
  const http = await startHttp(n, { port: 0, adminToken: 'admin' });
  cleanups.push(() => http.close());
  const sink = await RawClient.connect(n.port);
  cleanups.push(() => sink.close());
  sink.sub('orders.*', 1);
  await sink.flush();
  const answer = fetch(`http://127.0.0.1:${http.port}/v1/trace/orders.new?wait=1000`, {
    method: 'POST',
    headers: { authorization: 'Bearer admin', 'content-type': 'application/octet-stream' },
    body: 'x',
  });
  const ev = await sink.waitFor((g) => g.topic === 'orders.new');
  sink.sub(`_TRACE.${ev.trace!}`, 2);
  sink.send(traced('orders.new', ev.trace!, 41));
  await sink.flush();
  const res = (await (await answer).json()) as { hops: Array<Record<string, unknown>> };
  expect(errorsOf(sink)).toEqual([
    ['MB_ERR_PERMISSION_DENIED', 2],
    ['MB_ERR_PERMISSION_DENIED', 41],
  ]);
  expect(res.hops.length).toBe(1);
  expect(res.hops[0]!.to).toEqual(['client']);
  expect(sink.events().filter((g) => g.topic.startsWith('_TRACE')).length).toBe(0);
});

it('TraceGuard: one owner per id, bounded per owner, released with its owner', () => {
  const g = new TraceGuard('00000000000000aa', 3);
  const a = {};
  const b = {};
  g.claim(a, '0000000000000001');
  g.claim(a, '0000000000000001');
  expect(() => g.claim(b, '0000000000000001')).toThrow(expect.objectContaining({ code: 'MB_ERR_PERMISSION_DENIED' }));
  for (let i = 2; i <= 10; i++) g.claim(a, i.toString(16).padStart(16, '0'));
  expect(g.size).toBe(3);
  g.release(a);
  expect(g.size).toBe(0);
  g.claim(b, '0000000000000001');
  expect(MAX_TRACES_PER_OWNER).toBeGreaterThan(0);
});

it('the _TRACE check on topic bytes agrees with the string check, at every boundary', async () => {
  const { isTraceTopic, isTraceTopicAt } = await import('../../src/auth/reserved-topics.js');
  const cases: Array<[string, boolean]> = [
    ['_TRACE', true],
    ['_TRACE.0123456789abcdef', true],
    ['_TRACEx', false],
    ['_TRACE_', false],
    ['_TRAC', false],
    ['_trace.x', false],
    ['_INBOX.abc.1.tok', false],
    ['orders._TRACE', false],
    ['a', false],
  ];
  for (const [topic, trace] of cases) {
    // At an offset inside a larger buffer, as in a frame.
    const buf = Buffer.concat([Buffer.from('xx'), Buffer.from(topic), Buffer.from('.tail')]);
    expect(isTraceTopicAt(buf, 2, topic.length), topic).toBe(trace);
    expect(isTraceTopic(topic), topic).toBe(trace);
  }
});
