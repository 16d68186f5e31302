import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { ClusterNode, type ClusterOptions } from '../src/index.js';

export interface TestNode {
  node: MeshNode;
  cluster: ClusterNode;
  url: string;
  peerAddr: string;
}

/** Starts a node with a cluster on free loopback ports. */
export async function startMeshNode(opts: ClusterOptions = {}, name = ''): Promise<TestNode> {
  const node = await startNode({ port: 0, logger: silentLogger, name, pingInterval: 1000 });
  const cluster = await new ClusterNode(node, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, ...opts }).start();
  return { node, cluster, url: `127.0.0.1:${node.port}`, peerAddr: `127.0.0.1:${cluster.port}` };
}

export async function stopMeshNode(t: TestNode): Promise<void> {
  await t.cluster.stop();
  await t.node.close();
}

/** True once every node has an up link to every other. */
export function fullyMeshed(nodes: TestNode[]): boolean {
  return nodes.every((n) => nodes.every((m) => m === n || n.cluster.link(m.node.id)?.state === 'up'));
}

/** Number of remote (peer-owned) subscriptions `t` holds. */
export function remoteInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind === 'peer') n++;
  });
  return n;
}

export function client(t: TestNode, opts: Record<string, unknown> = {}): Promise<Client> {
  return connect(t.url, { name: 'test', ...opts });
}

/** Collects the payloads (as strings) a subscription receives. */
export function collect(c: Client, pattern: string, opts: { queue?: string } = {}): string[] {
  const got: string[] = [];
  c.subscribe(pattern, { ...opts, callback: (m: Msg) => got.push(Buffer.from(m.data).toString()) });
  return got;
}
