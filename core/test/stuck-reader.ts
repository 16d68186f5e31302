import { RawClient, RawWs, makePki, type RawFrames } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';

export type ReaderKind = 'tcp' | 'ws' | 'tls';

/**
 * A node (`options` over port 0 and a silent logger), a subscriber on `feed`
 * over `kind` (its SUB with `slow` when given; 'tls': the node's client port
 * over TLS) that stopped reading, and a publisher (over TLS too then); each
 * closed by `cleanup` (run in reverse by the caller).
 */
export async function stuckReader(
  cleanup: Array<() => Promise<void> | void>,
  kind: ReaderKind,
  options: NodeOptions,
  slow?: 'drop' | 'disconnect',
): Promise<{ n: MeshNode; stuck: RawFrames; pub: RawClient; session: object & { dropped: number; backedUp: boolean; pending: number } }> {
  const pki = kind === 'tls' ? makePki() : undefined;
  const n = await startNode({ port: 0, logger: silentLogger, ...(pki ? { tls: { cert: pki.cert, key: pki.key } } : {}), ...options });
  cleanup.push(() => n.close());
  const raw = (): Promise<RawClient> => (pki ? RawClient.connectTls(n.port, pki.ca) : RawClient.connect(n.port));
  let stuck: RawClient | RawWs;
  if (kind !== 'ws') stuck = await raw();
  else {
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    cleanup.push(() => g.close());
    stuck = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
  }
  cleanup.push(() => stuck.close());
  stuck.sub('feed', 1, slow === undefined ? {} : { slow });
  await stuck.flush();
  const session = [...n.connections()][0]!;
  stuck.pauseReading();
  const pub = await raw();
  cleanup.push(() => pub.close());
  return { n, stuck, pub, session };
}
