/**
 * Leaf keys (leaf-keys.ts, cluster/README.md "Leaf keys"). The twenty-fourth
 * session's review left this open: leaves held the cluster secret, so a leaf
 * could take the id of a node its hub did not know (another hub's leaf,
 * another region's node), and one forged event made every node drop that
 * node's events as old. A leaf now proves a key of its own, issued from the
 * cluster secret, and its node id is made from that key: it can speak only
 * as itself, and cannot join the mesh as a full node. Real nodes, raw peers
 * and SDK clients over loopback.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameType, decodeError, encodeBody } from '@meshbus/proto';
import { silentLogger, startNode } from '@meshbus/core';
import { until } from '@meshbus/testkit';
import { ClusterNode, issueLeafKey, leafIdentity, type ClusterOptions, type LeafIdentity } from '../src/index.js';
import { collect, meshKit, rawPeer, type TestNode } from './mesh-helpers.js';

const SECRET = 'leaf-keys-secret';
const { node, cli, tracked } = meshKit();
const AHEAD = 55 * 60 * 1e6; // µs: within what a node's per-origin order remembers

/** The key's secret as SPEC 7 defines it, computed here independently of the code under test. */
const keyHex = (secret: string, label: string): string => createHmac('sha256', secret).update(`meshbus-leaf-key-v1|${label}`).digest('hex');
const idFor = (hex: string, salt: string): string => createHmac('sha256', hex).update(`meshbus-leaf-id-v1|${salt}`).digest('hex').slice(0, 16);

/** A leaf node started with a leaf key (its id made from it), under `hubs`. */
async function keyedLeaf(key: string, hubs: TestNode[], extra: ClusterOptions = {}): Promise<TestNode & { identity: LeafIdentity }> {
  const identity = leafIdentity(key);
  const n = await startNode({ port: 0, id: identity.id, nodeIdInClientIds: true, logger: silentLogger, name: 'leaf', pingInterval: 1000 });
  const c = await new ClusterNode(n, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, mode: 'leaf', seeds: hubs.map((h) => h.peerAddr), leafKey: identity, ...extra }).start();
  return { ...tracked({ node: n, cluster: c, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${c.port}` }), identity };
}

/** A raw leaf on `port` that presents `label`'s key (as `secret` issued it) with `id` and `salt`: the hub's answer. */
async function rawKeyedLeaf(port: number, label: string, opts: { id?: string; salt?: string; secret?: string; leaf?: boolean } = {}): Promise<{ type: number; error?: string; message?: string }> {
  const salt = opts.salt ?? randomBytes(16).toString('hex');
  const hex = keyHex(opts.secret ?? SECRET, label);
  const me = { id: opts.id ?? idFor(hex, salt), name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', ...(opts.leaf === false ? {} : { leaf: true }), keyLabel: label, keySalt: salt };
  const c = await rawPeer(port, me as never, hex);
  try {
    const f = await c.waitFor((g) => g.type === FrameType.ERROR || g.type === FrameType.PONG || g.type === FrameType.INTEREST, 5000);
    return { type: f.type, error: f.error, message: f.type === FrameType.ERROR ? decodeError(f.payload).message : undefined };
  } finally {
    c.close();
  }
}

describe('leaf keys', () => {
  it('a leaf with a key of its own links to a hub that holds the cluster secret, and events flow both ways', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const leaf = await keyedLeaf(issueLeafKey(SECRET, 'paris-1'), [hub]);
    expect(leaf.node.id).toBe(idFor(keyHex(SECRET, 'paris-1'), leaf.identity.salt));
    await until(() => hub.cluster.peers().some((p) => p.id === leaf.node.id && p.state === 'up'), 'leaf link up at the hub');
    const atHub = collect(await cli(hub), 'up.>');
    const atLeaf = collect(await cli(leaf), 'down.>');
    const pubHub = await cli(hub);
    const pubLeaf = await cli(leaf);
    await until(async () => {
      pubLeaf.publish('up.x', 'from-leaf');
      pubHub.publish('down.x', 'from-hub');
      await Promise.all([pubLeaf.flush(), pubHub.flush()]);
      return atHub.includes('from-leaf') && atLeaf.includes('from-hub');
    }, 'events both ways');
  });

  it('a key holder cannot take another node\'s id (another hub\'s leaf): refused MB_ERR_AUTH_FAILED, that leaf\'s events still flow', async () => {
    const h1 = await node({ secret: SECRET }, 'h1');
    const h2 = await node({ secret: SECRET, seeds: [h1.peerAddr] }, 'h2');
    await until(() => h1.cluster.link(h2.node.id)?.state === 'up' && h2.cluster.link(h1.node.id)?.state === 'up', 'mesh');
    const victim = await keyedLeaf(issueLeafKey(SECRET, 'lyon-1'), [h2]);
    await until(() => h2.cluster.peers().some((p) => p.id === victim.node.id && p.state === 'up'), 'victim leaf up at h2');
    const got = collect(await cli(h1), 'z');
    await until(() => h2.node.table.size > 0, "h1's interest at h2");
    // The attacker holds a genuine key of its own (label evil), and claims the victim's id under h1, which does not know it.
    const answer = await rawKeyedLeaf(h1.cluster.port, 'evil', { id: victim.node.id });
    expect(answer.type).toBe(FrameType.ERROR);
    expect(answer.error).toBe('MB_ERR_AUTH_FAILED');
    expect(h1.cluster.peers().some((p) => p.id === victim.node.id)).toBe(false);
    // And with the victim's label but a salt of its own: the id the key makes is not the victim's either.
    expect((await rawKeyedLeaf(h1.cluster.port, 'lyon-1', { id: victim.node.id })).error).toBe('MB_ERR_AUTH_FAILED');
    const pub = await cli(victim);
    for (let i = 0; i < 10; i++) pub.publish('z', `real-${i}`);
    await pub.flush();
    await until(() => got.length === 10, 'the victim\'s 10 events at h1');
    expect(h1.cluster.reorderedDropped).toBe(0);
  });

  it('a keyed leaf speaks only as itself: an event stamped with another origin is dropped', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const other = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'other');
    await until(() => hub.cluster.link(other.node.id)?.state === 'up', 'mesh');
    const got = collect(await cli(hub), 'z');
    const salt = randomBytes(16).toString('hex');
    const hex = keyHex(SECRET, 'edge-7');
    const id = idFor(hex, salt);
    const leaf = await rawPeer(hub.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: 'edge-7', keySalt: salt } as never, hex);
    await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'raw keyed leaf up');
    leaf.send({ type: FrameType.PUB, topic: 'z', payload: Buffer.from('forged'), origin: Buffer.from(other.node.id, 'hex'), seq: Date.now() * 1000 + AHEAD, maxHops: 8 });
    await until(() => hub.cluster.badPeerEvents === 1, 'forged origin dropped');
    leaf.close();
    const pub = await cli(other);
    for (let i = 0; i < 10; i++) pub.publish('z', `real-${i}`);
    await pub.flush();
    await until(() => got.length === 10, "other's 10 events");
    expect(got).not.toContain('forged');
  });

  it('a key does not make a mesh node: without the leaf flag MB_ERR_BAD_PEER_INFO, its secret as the cluster\'s MB_ERR_AUTH_FAILED', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    expect((await rawKeyedLeaf(hub.cluster.port, 'sneaky', { leaf: false })).error).toBe('MB_ERR_BAD_PEER_INFO');
    // No key fields: the proof made with the key's secret is checked against the cluster secret.
    const c = await rawPeer(hub.cluster.port, { id: randomBytes(8).toString('hex'), name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', mesh: 'full' } as never, keyHex(SECRET, 'sneaky'));
    const f = await c.waitFor((g) => g.type === FrameType.ERROR, 5000);
    c.close();
    expect(f.error).toBe('MB_ERR_AUTH_FAILED');
    expect(hub.cluster.peers()).toHaveLength(0);
    // Nor a peer of a partial mesh (which relays every origin): only a full mesh's hub takes a keyed leaf.
    const partial = await node({ secret: SECRET, mode: 'partial' }, 'partial');
    expect(await rawKeyedLeaf(partial.cluster.port, 'sneaky')).toMatchObject({ error: 'MB_ERR_TOPOLOGY' });
    // And over a full node's gateway port it is a leaf still (not a region's gateway).
    const gw = await node({ secret: SECRET, region: 'eu' }, 'gw');
    const salt = randomBytes(16).toString('hex');
    const hex = keyHex(SECRET, 'sneaky');
    const id = idFor(hex, salt);
    const c2 = await rawPeer(gw.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, gateway: true, region: 'us', keyLabel: 'sneaky', keySalt: salt } as never, hex);
    await until(() => gw.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'keyed link up');
    const status = gw.cluster.peers().find((p) => p.id === id)!;
    expect([status.leaf, status.gateway]).toEqual([true, undefined]);
    c2.close();
  });

  it('a revoked label, a key from another secret and a hub without a secret are refused MB_ERR_AUTH_FAILED, saying why', async () => {
    const hub = await node({ secret: SECRET, deniedLeafKeys: ['lost-1'] }, 'hub');
    const revoked = await rawKeyedLeaf(hub.cluster.port, 'lost-1');
    expect(revoked).toMatchObject({ error: 'MB_ERR_AUTH_FAILED', message: expect.stringMatching(/revoked/) });
    const wrongSecret = await rawKeyedLeaf(hub.cluster.port, 'paris-2', { secret: 'another-secret' });
    expect(wrongSecret).toMatchObject({ error: 'MB_ERR_AUTH_FAILED', message: expect.stringMatching(/another secret/) });
    const open = await node({}, 'open-hub');
    expect(await rawKeyedLeaf(open.cluster.port, 'paris-3')).toMatchObject({ error: 'MB_ERR_AUTH_FAILED', message: expect.stringMatching(/no cluster secret/) });
    // A real keyed leaf under the revoked label never links; one of another label does.
    const lost = await keyedLeaf(issueLeafKey(SECRET, 'lost-1'), [hub]);
    const fine = await keyedLeaf(issueLeafKey(SECRET, 'fine-1'), [hub]);
    await until(() => hub.cluster.peers().some((p) => p.id === fine.node.id && p.state === 'up'), 'fine leaf up');
    expect(hub.cluster.peers().some((p) => p.id === lost.node.id && p.state === 'up')).toBe(false);
  });

  it('a hub\'s rules for a label bound what its keyed leaf subscribes to and publishes (MB_ERR_PERMISSION_DENIED), filtered at delivery', async () => {
    const hub = await node({ secret: SECRET, leafPermissions: { 'edge-1': { subscribe: { allow: ['edge.>', 'shared.>'], deny: ['shared.secret.>'] }, publish: { allow: ['edge.>'] } }, '*': { subscribe: { allow: ['nothing.>'] } } } }, 'hub');
    const salt = randomBytes(16).toString('hex');
    const hex = keyHex(SECRET, 'edge-1');
    const id = idFor(hex, salt);
    const leaf = await rawPeer(hub.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: 'edge-1', keySalt: salt } as never, hex);
    await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'keyed leaf up');
    // `>` and `_INBOX.>` (every reply made in the mesh) are outside its rules; `shared.>` only overlaps a deny: kept, filtered.
    leaf.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, '>', null, 1], [2, '_INBOX.>', null, 1], [3, 'edge.>', null, 1], [4, 'shared.>', null, 1]] }) });
    const refusal = await leaf.waitFor((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_PERMISSION_DENIED', 5000);
    expect(decodeError(refusal.payload).message).toMatch(/^2 interest entries refused/);
    const leafOwned = (): string[] => {
      const out: string[] = [];
      hub.node.table.forEach((s) => void (s.owner.kind === 'leaf' && out.push(s.pattern)));
      return out.sort();
    };
    await until(() => leafOwned().length === 2, 'the allowed entries');
    expect(leafOwned()).toEqual(['edge.>', 'shared.>']);
    const pub = await cli(hub);
    pub.publish('shared.secret.x', 'denied-topic');
    pub.publish('shared.open', 'allowed-topic');
    await pub.flush();
    await leaf.waitFor((g) => g.type === FrameType.PUB && g.topic === 'shared.open', 5000);
    expect(leaf.got.some((g) => g.type === FrameType.PUB && g.topic === 'shared.secret.x')).toBe(false);
    // Its events outside its publish rules are dropped; inside, delivered.
    const got = collect(await cli(hub), '>');
    await until(() => hub.node.table.size >= 3, 'the subscription at the hub');
    const stamp = (topic: string, seq: number) => ({ type: FrameType.PUB, topic, payload: Buffer.from(topic), origin: Buffer.from(id, 'hex'), seq, maxHops: 8 });
    const t = Date.now() * 1000;
    leaf.send(stamp('orders.forged', t + 1), stamp('edge.ok', t + 2));
    await until(() => got.includes('edge.ok'), 'the allowed event');
    expect(got).not.toContain('orders.forged');
    await leaf.waitFor((g) => g.type === FrameType.ERROR && decodeError(g.payload).message.includes('publish to "orders.forged"'), 5000);
    leaf.close();
    // Another label gets the '*' rules.
    const salt2 = randomBytes(16).toString('hex');
    const hex2 = keyHex(SECRET, 'edge-2');
    const other = await rawPeer(hub.cluster.port, { id: idFor(hex2, salt2), name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: 'edge-2', keySalt: salt2 } as never, hex2);
    other.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'edge.>', null, 1]] }) });
    await other.waitFor((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_PERMISSION_DENIED', 5000);
    other.close();
  });

  it('a keyed leaf subscribes only to its own inboxes; its `>` never carries other clients\' replies; requests work both ways', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const salt = randomBytes(16).toString('hex');
    const hex = keyHex(SECRET, 'edge-3');
    const id = idFor(hex, salt);
    const raw = await rawPeer(hub.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: 'edge-3', keySalt: salt } as never, hex);
    await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'keyed leaf up');
    const mine = `_INBOX.${id}0123456789abcdef.>`;
    raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, '_INBOX.>', null, 1], [2, '_INBOX.*.>', null, 1], [3, `_INBOX.${'0'.repeat(16)}.>`, null, 1], [4, '_TRACE.>', null, 1], [5, mine, null, 1], [6, '>', null, 1]] }) });
    const refusal = await raw.waitFor((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_PERMISSION_DENIED', 5000);
    expect(decodeError(refusal.payload).message).toMatch(/^4 interest entries refused/);
    const responder = await cli(hub);
    responder.subscribe('svc.echo', { callback: (m) => m.respond('pong') });
    const requester = await cli(hub);
    await until(() => hub.node.table.size >= 3, 'the hub\'s subscriptions');
    // A hub client's request: its reply goes to its inbox, which the leaf's `>` matches: not to the leaf.
    expect((await requester.request('svc.echo', 'ping', { timeout: 2000 })).string()).toBe('pong');
    responder.publish('plain.topic', 'seen');
    responder.publish(`_INBOX.${id}0123456789abcdef.7.tok`, 'own-reply');
    await raw.waitFor((g) => g.type === FrameType.PUB && g.topic === `_INBOX.${id}0123456789abcdef.7.tok`, 5000);
    await raw.waitFor((g) => g.type === FrameType.PUB && g.topic === 'plain.topic', 5000);
    expect(raw.got.filter((g) => g.type === FrameType.PUB && g.topic!.startsWith('_INBOX.') && !g.topic!.startsWith(`_INBOX.${id}`))).toHaveLength(0);
    raw.close();
    // A real keyed leaf: its clients' ids start with its node id, and requests cross the link both ways.
    const leaf = await keyedLeaf(issueLeafKey(SECRET, 'edge-4'), [hub]);
    await until(() => hub.cluster.peers().some((p) => p.id === leaf.node.id && p.state === 'up'), 'real leaf up');
    const atLeaf = await cli(leaf);
    expect(atLeaf.info.client.startsWith(leaf.node.id)).toBe(true);
    atLeaf.subscribe('leaf.echo', { callback: (m) => m.respond('from-leaf') });
    await until(async () => (await atLeaf.request('svc.echo', 'x', { timeout: 500 }).then((m) => m.string(), () => '')) === 'pong', 'a leaf client\'s request answered at the hub');
    await until(async () => (await requester.request('leaf.echo', 'x', { timeout: 500 }).then((m) => m.string(), () => '')) === 'from-leaf', 'a hub client\'s request answered at the leaf');
  });

  it('options: a key only on a leaf, not beside a secret, with the id it makes; labels and keys checked', async () => {
    const key = issueLeafKey(SECRET, 'opts-1');
    expect(key).toMatch(/^mbleaf1\.opts-1\.[0-9a-f]{64}$/);
    expect(() => issueLeafKey(SECRET, 'no spaces')).toThrow(/label/);
    expect(() => issueLeafKey('short', 'x')).toThrow(/cluster secret/);
    expect(() => leafIdentity('mbleaf1.x.zz')).toThrow(/mbleaf1/);
    const identity = leafIdentity(key);
    expect(leafIdentity(key, identity.salt).id).toBe(identity.id);
    const n = await startNode({ port: 0, logger: silentLogger });
    try {
      const seeds = ['127.0.0.1:1'];
      expect(() => new ClusterNode(n, { port: 0, mode: 'leaf', seeds, leafKey: identity })).toThrow(/id leafIdentity\(\) made/);
      const keyed = await startNode({ port: 0, id: identity.id, logger: silentLogger });
      expect(() => new ClusterNode(keyed, { port: 0, mode: 'leaf', seeds, leafKey: identity })).toThrow(/nodeIdInClientIds/);
      await keyed.close();
      expect(() => new ClusterNode(n, { port: 0, mode: 'full', seeds, leafKey: identity })).toThrow(/leaf node/);
      expect(() => new ClusterNode(n, { port: 0, mode: 'leaf', seeds, leafKey: identity, secret: SECRET })).toThrow(/not both/);
      expect(() => new ClusterNode(n, { port: 0, deniedLeafKeys: ['a b'] })).toThrow(/deniedLeafKeys/);
      expect(() => new ClusterNode(n, { port: 0, leafPermissions: { 'a b': {} } })).toThrow(/leafPermissions/);
      expect(() => new ClusterNode(n, { port: 0, leafPermissions: { x: { publish: ['a.>'] } as never } })).toThrow(/leafPermissions x/);
    } finally {
      await n.close();
    }
  });
});
