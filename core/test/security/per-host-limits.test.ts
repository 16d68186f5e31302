/**
 * maxConnectionsPerIp counts hosts the way the auth throttle does (addressKey):
 * an IPv4-mapped IPv6 address is its IPv4, IPv6 counts by /64. It counted
 * the exact address string: a client reaching a dual-stack client port
 * (`::ffff:127.0.0.1`) and an IPv4 WebSocket port (`127.0.0.1`) had the bound
 * twice, and an IPv6 host, which holds a whole /64, had it once per address.
 */
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient, RawWs, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode, type ClientSession, type MeshNode } from '../../src/index.js';
import { ClientRegistry } from '../../src/client-registry.js';
import { startWsGateway, type WsGateway } from '../../src/ws/index.js';

const cleanup = cleanups();

describe('connections per host', () => {
  it('one host over a dual-stack TCP port and an IPv4 WebSocket port has the bound once', async () => {
    const node: MeshNode = await startNode({ port: 0, host: '::', logger: silentLogger, maxConnectionsPerIp: 2 });
    cleanup.push(() => node.close());
    const gw: WsGateway = await startWsGateway(node, { port: 0, host: '127.0.0.1' });
    cleanup.push(() => gw.close());
    const tcp = [await RawClient.connect(node.port), await RawClient.connect(node.port)];
    for (const c of tcp) cleanup.push(() => c.close());
    expect(tcp.map((c) => c.got[0]?.typeName)).toEqual(['WELCOME', 'WELCOME']);
    expect([...node.connections()].map((s) => s.remote.split(':').slice(0, -1).join(':'))).toEqual(['::ffff:127.0.0.1', '::ffff:127.0.0.1']);
    const third = await RawWs.connect(`ws://127.0.0.1:${gw.port}`);
    cleanup.push(() => third.close());
    const answer = third.got.find((g) => g.type === FrameType.ERROR || g.type === FrameType.WELCOME);
    expect(answer?.error).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
  });

  it('IPv6 addresses of one /64 count as one host', () => {
    const r = new ClientRegistry();
    const s = (remote: string): ClientSession => ({ remote }) as ClientSession;
    expect(r.add(s('2001:db8:1:2::1:5000')).count).toBe(1);
    expect(r.add(s('2001:db8:1:2:aaaa::9:5001')).count).toBe(2);
    expect(r.add(s('2001:db8:1:3::1:5002')).count).toBe(1);
    expect(r.add(s('::ffff:10.0.0.1:5003')).count).toBe(1);
    expect(r.add(s('10.0.0.1:5004')).count).toBe(2);
  });
});
