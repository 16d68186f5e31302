/**
 * A hub takes at most maxLeafLinks leaf links (default 64). Each one keeps its
 * own copy of all the interest the hub announces to it (InterestExchange:
 * announced, told, announcedById): before, leaf links were not limited in
 * number, and 20 of them on a hub with 20,000 client subscriptions took
 * +59 MB of its heap (~2.9 MB a link), for anyone holding the cluster secret.
 * Past the bound a leaf link is refused (fatal ERROR MB_ERR_TOO_MANY_CONNECTIONS,
 * logged); a leaf replacing its own link, or one that comes after another
 * left, is taken.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, decodeError } from '@meshbus/proto';
import { silentLogger, startNode, type Logger } from '@meshbus/core';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { ClusterNode, resolveClusterOptions, type ClusterOptions, type PeerInfo } from '../src/index.js';
import { rawPeer, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup = cleanups();

async function hub(opts: Partial<ClusterOptions>): Promise<TestNode & { lines: Array<{ msg: string; o: Record<string, unknown> }> }> {
  const lines: Array<{ msg: string; o: Record<string, unknown> }> = [];
  const rec = (o: object, msg?: string): void => void lines.push({ msg: msg ?? '', o: o as Record<string, unknown> });
  const logger: Logger = { ...silentLogger, warn: rec, error: rec };
  const n = await startNode({ port: 0, logger, name: 'hub' });
  const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, ...opts }).start();
  const t = { node: n, cluster, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${cluster.port}`, lines };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

const leaf = (i: number): PeerInfo => ({ id: `1eaf1eaf1eaf${(0x1000 + i).toString(16)}`, name: `leaf-${i}`, cluster: '127.0.0.1:9', client: '127.0.0.1:9', leaf: true });
const leafLinksUp = (t: TestNode): number => t.cluster.peers().filter((p) => p.state === 'up').length;

describe('leaf links per hub', () => {
  it('has a documented default', () => {
    expect(resolveClusterOptions({ secret: SECRET } as ClusterOptions).maxLeafLinks).toBe(64);
  });

  it('past maxLeafLinks a leaf link is refused with MB_ERR_TOO_MANY_CONNECTIONS (logged) and holds no copy of the hub\'s interest; room comes back when a leaf leaves', async () => {
    const h = await hub({ maxLeafLinks: 2 } as Partial<ClusterOptions>);
    // Interest the hub announces to every leaf link: each link up holds a copy.
    const c = await RawClient.connect(h.node.port);
    cleanup.push(() => c.close());
    for (let i = 1; i <= 50; i++) c.sub(`app.${i}.events`, i);
    await c.flush();
    const leaves: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const l = await rawPeer(h.cluster.port, leaf(i), SECRET);
      leaves.push(l);
      cleanup.push(() => l.close());
      await until(() => leafLinksUp(h) === i + 1, `leaf ${i} up`);
      await l.waitFor((f) => f.type === FrameType.INTEREST);
    }
    const third = await rawPeer(h.cluster.port, leaf(2), SECRET);
    cleanup.push(() => third.close());
    const refusal = await third.waitFor((f) => f.error === 'MB_ERR_TOO_MANY_CONNECTIONS');
    expect(decodeError(refusal.payload).message).toMatch(/maxLeafLinks/);
    await third.waitClosed();
    expect(third.got.some((f) => f.type === FrameType.INTEREST)).toBe(false);
    expect(leafLinksUp(h)).toBe(2);
    const logged = h.lines.filter((l) => l.o.code === 'MB_ERR_TOO_MANY_CONNECTIONS');
    expect(logged, JSON.stringify(h.lines)).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: 'leaf link refused: maxLeafLinks reached', o: { leaf: leaf(2).id, maxLeafLinks: 2 } });
    // Again and again, under fresh ids (a leaf redials; a hostile one picks ids): refused each time, logged once.
    for (let k = 0; k < 5; k++) {
      const again = await rawPeer(h.cluster.port, leaf(3 + k), SECRET);
      await again.waitFor((f) => f.error === 'MB_ERR_TOO_MANY_CONNECTIONS');
      again.close();
    }
    expect(h.lines.filter((l) => l.o.code === 'MB_ERR_TOO_MANY_CONNECTIONS')).toHaveLength(1);
    // One leaf leaves: another one is taken.
    leaves[0]!.close();
    await until(() => leafLinksUp(h) === 1, 'leaf 0 gone');
    const later = await rawPeer(h.cluster.port, leaf(20), SECRET);
    cleanup.push(() => later.close());
    await later.waitFor((f) => f.type === FrameType.INTEREST);
    await until(() => leafLinksUp(h) === 2, 'the later leaf up');
  });
});
