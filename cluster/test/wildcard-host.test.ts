/**
 * A node bound to every interface (--host 0.0.0.0, the Docker image's
 * default) without --advertise says "0.0.0.0:<port>" as its cluster and
 * client addresses. Its peers took that as said: they gossiped it (a node
 * that learns it by gossip dials its own machine) and told their clients to
 * fail over to "0.0.0.0:<port>" (the client's own machine). A peer now puts
 * the address it reached the node at in place of a wildcard host.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, decodeWelcome } from '@meshbus/proto';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { reachableAt, type PeerInfo } from '../src/peer-info.js';
import { startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const cleanup = cleanups();

describe('a peer bound to the wildcard address', () => {
  it('is known, gossiped and given to clients at the address its peers reach it at', async () => {
    const a = await startMeshNode({ host: '0.0.0.0' }, 'a', { host: '0.0.0.0' });
    cleanup.push(() => stopMeshNode(a));
    const nodes: TestNode[] = [];
    for (const name of ['b', 'c']) {
      const t = await startMeshNode({ seeds: [`127.0.0.1:${a.cluster.port}`] }, name);
      cleanup.push(() => stopMeshNode(t));
      nodes.push(t);
    }
    const [b, c] = nodes as [TestNode, TestNode];
    // c learns b from a's gossip, b learns c: a full mesh of three.
    await until(() => [b, c].every((t) => t.cluster.peers().filter((p) => p.state === 'up').length === 2), 'full mesh');
    for (const t of [b, c]) {
      const seen = t.cluster.peers().find((p) => p.id === a.node.id)!;
      expect([seen.address, seen.client]).toEqual([`127.0.0.1:${a.cluster.port}`, `127.0.0.1:${a.node.port}`]);
    }
    const cl = await RawClient.connect(b.node.port);
    cleanup.push(() => cl.close());
    const peers = decodeWelcome(cl.got.find((g) => g.type === FrameType.WELCOME)!.payload).peers;
    expect(peers).toContain(`127.0.0.1:${a.node.port}`);
    expect(peers.filter((u) => u.startsWith('0.0.0.0'))).toEqual([]);
  });

  it('wildcard hosts in every form are replaced; other addresses are kept', () => {
    const p = (cluster: string, client: string): PeerInfo => ({ id: 'ab12cd34ef56ab78', name: 'n', cluster, client });
    expect(reachableAt(p('0.0.0.0:4481', 'tls://0.0.0.0:4480'), '10.0.0.7')).toMatchObject({ cluster: '10.0.0.7:4481', client: 'tls://10.0.0.7:4480' });
    expect(reachableAt(p('[::]:4481', ':::4480'), '2001:db8::7')).toMatchObject({ cluster: '[2001:db8::7]:4481', client: '[2001:db8::7]:4480' });
    expect(reachableAt(p('0.0.0.0:4481', '0.0.0.0:4480'), '::ffff:10.0.0.7')).toMatchObject({ cluster: '10.0.0.7:4481', client: '10.0.0.7:4480' });
    const named = p('node-1.mesh:4481', '10.0.0.9:4480');
    expect(reachableAt(named, '10.0.0.7')).toBe(named);
  });
});
