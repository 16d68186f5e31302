import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { silentLogger, startNode, type MeshNode, type PeerView } from '../src/index.js';
import { startHttp, type HttpServer } from '../src/http/index.js';
import { RawClient, openMetricsClashes, promtoolCheck } from '@meshbus/testkit';
import { EventTap, parseProm } from './http-helpers.js';

/**
 * Issue 16: /metrics through prom-client. A real node with real traffic,
 * scraped over HTTP: `promtool check metrics` finds nothing to say, prom-client's
 * default process_/nodejs_ series are there, the duration histograms count
 * what happened, no name clashes under OpenMetrics and the per-peer up gauge
 * has no label that changes with the link's state.
 */

const nodes: MeshNode[] = [];
const servers: HttpServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
  for (const n of nodes.splice(0)) await n.close();
});

const BIN = { 'content-type': 'application/octet-stream' };

describe('/metrics through prom-client', () => {
  it('passes promtool check metrics on a real node after real traffic, with the default and duration series', async (ctx) => {
    let state: PeerView['state'] = 'up';
    const peer = (): PeerView => ({ id: 'aaaaaaaaaaaaaaaa', name: 'n2', address: '127.0.0.1:7001', state, rttMs: 2, since: 0, msgsIn: 7, msgsOut: 9 });
    const node = await startNode({ port: 0, logger: silentLogger });
    nodes.push(node);
    // Every scrape rendered anew (the default renders at most once a second): the test scrapes again after the link goes down.
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', cluster: { ready: () => true, peers: () => [peer()] }, metricsMinInterval: 0 });
    servers.push(http);
    const pub = await RawClient.connect(node.port);
    const sub = await RawClient.connect(node.port);
    clients.push(pub, sub);
    sub.sub('m.>', 1);
    sub.sub('svc.echo', 2);
    await sub.flush();
    for (let i = 0; i < 64; i++) pub.pub(`m.${i}`, 'x');
    await pub.flush();
    await sub.waitFor(() => sub.events().filter((e) => e.topic.startsWith('m.')).length === 64);
    // One answered POST /v1/request: a round trip the node sees.
    const tap = new EventTap(sub);
    const pending = fetch(`${http.url}/v1/request/svc.echo?timeout=3000`, { method: 'POST', headers: BIN, body: 'ping' });
    const req = await tap.waitFor((e) => e.type === FrameType.REQ);
    sub.send({ type: FrameType.PUB, topic: req.ext!.reply!, correlation: req.correlation, payload: Buffer.from('pong') });
    expect((await pending).status).toBe(200);
    // The delivery observations run in setImmediate after the writes: one more turn.
    await new Promise((r) => setImmediate(r));

    const text = await (await fetch(`${http.url}/metrics`)).text();
    const m = parseProm(text);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) {
      expect(m.types.has(name), name).toBe(true);
    }
    expect(m.types.get('meshbus_delivery_seconds')).toBe('histogram');
    // 64 events routed (plus the request): one in 16 is timed.
    expect(m.get('meshbus_delivery_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(m.get('meshbus_delivery_seconds_bucket', { le: '+Inf' })).toBe(m.get('meshbus_delivery_seconds_count'));
    expect(m.get('meshbus_http_request_round_trip_seconds_count')).toBe(1);
    expect(m.types.get('meshbus_store_write_seconds')).toBe('histogram');
    expect(m.get('meshbus_store_write_seconds_count')).toBe(0);
    expect(m.types.get('meshbus_event_loop_lag_seconds')).toBe('summary');
    expect(m.types.get('meshbus_connections')).toBe('gauge');
    expect(m.get('meshbus_connections_accepted_total')).toBe(2);
    expect(m.types.has('meshbus_connections_total')).toBe(false);
    expect(openMetricsClashes(m.types)).toEqual([]);
    // No durability: no Redis health series.
    expect(m.types.has('meshbus_store_redis_up')).toBe(false);

    // The per-peer up gauge keeps its series when the link's state changes (no `state` label).
    const up = m.samples.filter((s) => s.name === 'meshbus_peer_up');
    expect(up).toEqual([{ name: 'meshbus_peer_up', labels: { peer: 'aaaaaaaaaaaaaaaa', name: 'n2', address: '127.0.0.1:7001' }, value: 1 }]);
    state = 'down';
    const down = parseProm(await (await fetch(`${http.url}/metrics`)).text()).samples.filter((s) => s.name === 'meshbus_peer_up');
    expect(down).toEqual([{ ...up[0], value: 0 }]);

    const check = promtoolCheck(ctx, text);
    expect(check.out).toBe('');
    expect(check.code).toBe(0);
  });

  it('closing the HTTP API puts the node\'s no-op duration observers back', async () => {
    const node = await startNode({ port: 0, logger: silentLogger });
    nodes.push(node);
    const idle = { ...node.timings };
    const http = await startHttp(node, { port: 0, host: '127.0.0.1' });
    expect(node.timings.delivery).not.toBe(idle.delivery);
    await http.close();
    expect(node.timings).toEqual(idle);
    expect(node.timings.delivery).toBe(idle.delivery);
  });
});
