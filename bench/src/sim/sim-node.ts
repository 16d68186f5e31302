/**
 * One node of the many-node simulation (mesh-sim.ts), as its own process:
 * a meshbus node, its cluster, and a DelayProxy in front of its cluster port
 * (advertised as the node's address, so every link to it has the latency).
 * Configured by MESHBUS_SIM (JSON, SimNodeConfig); answers the driver over
 * IPC (SimRequest → SimReply).
 */
import { silentLogger, startNode } from '@meshbus/core';
import { ClusterNode, type MeshMode } from '@meshbus/cluster';
import { DelayProxy } from './delay-proxy.js';

export interface SimNodeConfig {
  name: string;
  mode: MeshMode;
  /** Proxy addresses of the nodes to dial. */
  seeds: string[];
  /** Port of this node's proxy (its advertised cluster address), chosen by the driver so seeds are known up front. */
  proxyPort: number;
  /** Port of the node's own cluster listener (behind the proxy), chosen by the driver with the others so no two processes pick the same. */
  clusterPort: number;
  /** One-way latency of links into this node, ms. */
  delayMs: number;
  pingInterval: number;
}

export type SimRequest = { op: 'stats'; topic?: string } | { op: 'stop' };

export interface SimStats {
  id: string;
  /** Links up (peers, leaves). */
  links: number;
  /** Whether some receiver here matches `topic` (the request's), counting interest learned from links. */
  interested: boolean;
  /** Bytes sent for interest propagation and gossip since start. */
  interestBytesOut: number;
  gossipBytesOut: number;
  /** Bytes through this node's proxy (its inbound links, both ways). */
  proxyBytes: number;
  rss: number;
}

export type SimReply = { ready: true; id: string; clientPort: number; proxyPort: number } | ({ stats: true } & SimStats);

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.MESHBUS_SIM ?? '{}') as SimNodeConfig;
  const clusterPort = cfg.clusterPort;
  const proxy = new DelayProxy(clusterPort, cfg.delayMs);
  const proxyPort = await proxy.listen(cfg.proxyPort);
  const node = await startNode({ port: 0, logger: silentLogger, name: cfg.name, pingInterval: cfg.pingInterval });
  const cluster = await new ClusterNode(node, {
    port: clusterPort,
    advertise: `127.0.0.1:${proxyPort}`,
    seeds: cfg.seeds,
    mode: cfg.mode,
    pingInterval: cfg.pingInterval,
    redialMin: 50,
    redialMax: 1000,
  }).start();
  // The driver may be gone (a failed run): a reply into a closed channel is dropped, not thrown.
  const send = (m: SimReply): void => void process.send!(m, undefined, undefined, () => undefined);
  process.on('message', (m: SimRequest) => {
    if (m.op === 'stop') {
      void cluster
        .stop()
        .then(() => node.close())
        .then(() => proxy.close())
        .finally(() => process.exit(0));
      return;
    }
    const t = cluster.traffic();
    const route = m.topic === undefined ? undefined : node.table.route(m.topic);
    const interested = route !== undefined && route.plain.length + route.groups.length > 0;
    send({
      stats: true,
      id: node.id,
      links: cluster.peers().filter((p) => p.state === 'up').length,
      interested,
      interestBytesOut: t.interestBytesOut,
      gossipBytesOut: t.gossipBytesOut,
      proxyBytes: proxy.bytes,
      rss: process.memoryUsage().rss,
    });
  });
  process.on('disconnect', () => process.exit(0));
  send({ ready: true, id: node.id, clientPort: node.port, proxyPort });
}

main().catch((e: unknown) => {
  process.stderr.write(`sim node failed: ${String(e)}\n`);
  process.exit(1);
});
