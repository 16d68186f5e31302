/**
 * A keyed leaf is the edge box most likely to be lost or broken into: what
 * a hostile one tried after leaf keys landed (the twenty-fifth session's
 * review), each a raw keyed leaf that holds a genuine key of its own.
 * - A queue copy handed back as re-sent keeps its publisher's origin, and
 *   was let past the origin check: one forged "re-sent" copy with another
 *   node's origin and a far-future sequence made the hub's other leaves drop
 *   that node's events as old (0 of 10). Now a keyed leaf hands back only the
 *   copies its hub sent it, each once (sent-copies.ts).
 * - One key made a fresh id per salt and took every leaf link of the hub.
 * - Dead letters (`_DLQ.<group>`), which clients may not publish.
 * - Asking with any label told which labels are revoked.
 * Real nodes, raw peers and SDK clients over loopback.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Msg } from '@meshbus/sdk';
import { FrameType, OFF, applyCrcDelta, decodeBody, decodeError, encodeBody, encodeFrame, patchU32, patchU8 } from '@meshbus/proto';
import { silentLogger, startNode } from '@meshbus/core';
import { RawClient, logCapture, until, type Got } from '@meshbus/testkit';
import { ClusterNode, issueLeafKey, leafIdentity } from '../src/index.js';
import { RESENT } from '../src/member-gone.js';
import { LinkStateLog } from '../src/link-state-log.js';
import { announced, collect, meshKit, rawPeer, type TestNode } from './mesh-helpers.js';

const SECRET = 'leaf-key-abuse-secret';
const { node, cli, clients, tracked } = meshKit();
const AHEAD = 55 * 60 * 1e6; // µs: within what a node's per-origin order remembers

const keyHex = (label: string): string => createHmac('sha256', SECRET).update(`meshbus-leaf-key-v1|${label}`).digest('hex');
const idFor = (hex: string, salt: string): string => createHmac('sha256', hex).update(`meshbus-leaf-id-v1|${salt}`).digest('hex').slice(0, 16);

/** A raw keyed leaf of `label` on `hub` (its id made from its key, as a real one's), once the hub holds it up; or the hub's refusal. */
async function rawLeaf(hub: TestNode, label: string, opts: { id?: string; wait?: boolean } = {}): Promise<{ c: RawClient; id: string }> {
  const salt = randomBytes(16).toString('hex');
  const hex = keyHex(label);
  const id = opts.id ?? idFor(hex, salt);
  const c = await rawPeer(hub.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: label, keySalt: salt, resentMark: true } as never, hex);
  clients.push(c);
  if (opts.wait !== false) await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), `raw leaf ${label} up`);
  return { c, id };
}

/** A real leaf node with a key of `label`, under `hub`, once the hub holds it up. */
async function keyedLeaf(label: string, hub: TestNode): Promise<TestNode> {
  const identity = leafIdentity(issueLeafKey(SECRET, label));
  const n = await startNode({ port: 0, id: identity.id, nodeIdInClientIds: true, logger: silentLogger, name: label, pingInterval: 1000 });
  const c = await new ClusterNode(n, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, mode: 'leaf', seeds: [`127.0.0.1:${hub.cluster.port}`], leafKey: identity }).start();
  const t = tracked({ node: n, cluster: c, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${c.port}` });
  await until(() => hub.cluster.peers().some((p) => p.id === n.id && p.state === 'up'), `leaf ${label} up`);
  return t;
}


/** `copy` as a leaf hands it back: its bytes as they came, hops raised, sid the hub's group id marked re-sent (a changed `payload`: a forgery). */
function handBack(copy: Got, groupId: number, payload?: string): Buffer {
  if (payload !== undefined) return Buffer.from(encodeFrame({ type: FrameType.PUB, topic: copy.topic, payload: Buffer.from(payload), origin: Buffer.from(copy.origin, 'hex'), seq: copy.seq, hops: copy.hops + 1, maxHops: copy.maxHops, sid: groupId + RESENT }));
  const b = Buffer.from(copy.bytes);
  applyCrcDelta(b, 0, patchU8(b, 0, OFF.HOPS, copy.hops + 1) ^ patchU32(b, 0, OFF.SID, groupId + RESENT));
  return b;
}

/** Both queue members of `g` at the hub, and the group's interest at M. */
async function groupReady(hub: TestNode, m: TestNode): Promise<void> {
  await until(() => {
    let n = 0;
    hub.node.table.forEach((s) => void (s.queue === 'g' && n++));
    return n === 2 && m.node.table.size > 0;
  }, 'both members at the hub, the group at M');
}

describe('a hostile keyed leaf', () => {
  it('hands back only queue copies its hub sent it, each once: a forged origin on a "re-sent" copy is dropped, that node\'s events still reach the other leaves', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const m = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'M');
    await until(() => hub.cluster.link(m.node.id)?.state === 'up' && m.cluster.link(hub.node.id)?.state === 'up', 'mesh');
    // The victim: a real keyed leaf with a queue member on `job` and a subscriber to M's events on `z`.
    const victim = await keyedLeaf('victim-1', hub);
    const atVictim = await cli(victim);
    const jobs: string[] = [];
    atVictim.subscribe('job', { queue: 'g', callback: (x: Msg) => jobs.push(x.string()) });
    const fromM = collect(atVictim, 'z');
    await atVictim.flush();
    // An auditor at the hub, its own group on the same topic: each job once.
    const auditor = await cli(hub);
    const audits = collect(auditor, 'job', { queue: 'audit' });
    await auditor.flush();
    const { c: raw, id: rawId } = await rawLeaf(hub, 'evil-1');
    const groupId = await announced(raw, 'job', 'g');
    const auditId = await announced(raw, 'job', 'audit');
    raw.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'job', 'g', 1]] }) });
    let members = 0;
    await until(() => {
      members = 0;
      hub.node.table.forEach((s) => void (s.queue === 'g' && members++));
      return members === 2;
    }, 'both members at the hub');
    await until(() => m.node.table.size > 0, "the leaf's interest at M");

    // A genuine copy the raw leaf got, handed back (its member "ended"): delivered to the other member, once.
    const pub = await cli(hub);
    let copy: ReturnType<RawClient['got']['find']>;
    await until(async () => {
      pub.publish('job', `j-${Date.now()}-${Math.random()}`);
      await pub.flush();
      copy = raw.got.find((g) => g.type === FrameType.PUB && g.topic === 'job');
      return copy !== undefined;
    }, 'a queue copy at the raw leaf');
    const back = handBack(copy!, groupId);
    const text = Buffer.from(copy!.payload).toString();
    // Its origin and sequence with other content, or for another group: refused, the genuine copy still taken.
    raw.sendBytes(handBack(copy!, groupId, 'approve invoice 666'));
    raw.sendBytes(handBack(copy!, auditId));
    await until(() => hub.cluster.badPeerEvents === 2, 'both altered copies dropped');
    raw.sendBytes(back);
    await until(() => jobs.includes(text), 'the handed-back copy at the other member');
    expect(hub.cluster.badPeerEvents).toBe(2);
    raw.sendBytes(back); // the same copy again: it was handed back already
    await until(() => hub.cluster.badPeerEvents === 3, 'the second hand-back dropped');

    // A "re-sent" copy it was never sent, stamped with M's origin and a sequence far ahead.
    raw.send({ type: FrameType.PUB, topic: 'job', payload: Buffer.from('forged'), origin: Buffer.from(m.node.id, 'hex'), seq: Date.now() * 1000 + AHEAD, hops: 2, maxHops: 8, sid: groupId + RESENT });
    await until(() => hub.cluster.badPeerEvents === 4, 'the forged copy dropped');
    // Its own events still pass (its own origin).
    const own = await cli(hub);
    const atHub = collect(own, 'edge.ok');
    await own.flush();
    raw.send({ type: FrameType.PUB, topic: 'edge.ok', payload: Buffer.from('own'), origin: Buffer.from(rawId, 'hex'), seq: Date.now() * 1000, maxHops: 8 });
    await until(() => atHub.includes('own'), 'the leaf\'s own event');
    const atM = await cli(m);
    for (let i = 0; i < 10; i++) atM.publish('z', `real-${i}`);
    await atM.flush();
    await until(() => fromM.length === 10, "M's 10 events at the victim leaf (before: 0, dropped as old)");
    expect(jobs.filter((j) => j === text)).toHaveLength(1);
    expect(jobs).not.toContain('forged');
    expect(audits.filter((j) => j === text)).toHaveLength(1);
    expect(victim.cluster.reorderedDropped).toBe(0);
  });

  it('a real keyed leaf\'s member that ends still hands its copies back: every event reaches a member exactly once', async () => {
    const hub = await node({ secret: SECRET }, 'hub');
    const m = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'M');
    await until(() => hub.cluster.link(m.node.id)?.state === 'up', 'mesh');
    const leaf = await keyedLeaf('edge-9', hub);
    const atLeaf: string[] = [];
    const atHub: string[] = [];
    const c1 = await cli(leaf);
    c1.subscribe('lq', { queue: 'g', max: 3, callback: (x: Msg) => atLeaf.push(x.string()) });
    const c2 = await cli(hub);
    c2.subscribe('lq', { queue: 'g', callback: (x: Msg) => atHub.push(x.string()) });
    await Promise.all([c1.flush(), c2.flush()]);
    await groupReady(hub, m);
    const pub = await cli(m);
    // A burst longer than what the hub once kept of the copies it sent (1024: 473 of 3000 were lost).
    const total = 3000;
    for (let i = 0; i < total; i++) pub.publish('lq', String(i));
    await pub.flush();
    await until(() => atLeaf.length + atHub.length + hub.node.stats.dropped.noQueueMember >= total, 'every event delivered or counted');
    expect(atLeaf).toHaveLength(3);
    expect(new Set([...atLeaf, ...atHub]).size).toBe(total);
    expect(atLeaf.length + atHub.length).toBe(total);
    expect(hub.cluster.badPeerEvents).toBe(0);
    // What the hub still holds of the copies it sent: at most the copies since its last answered checkpoint.
    expect(hub.cluster.link(leaf.node.id)!.rules!.copiesHeld).toBeLessThan(256);
  });

  it('hands back copies its publish rules would refuse (it may receive orders.>, publish telemetry.> only): none lost (before: about half)', async () => {
    const hub = await node({ secret: SECRET, leafPermissions: { 'edge-7': { subscribe: { allow: ['orders.>'] }, publish: { allow: ['telemetry.>'] } } } }, 'hub');
    const m = await node({ secret: SECRET, seeds: [hub.peerAddr] }, 'M');
    await until(() => hub.cluster.link(m.node.id)?.state === 'up', 'mesh');
    const leaf = await keyedLeaf('edge-7', hub);
    const atLeaf: string[] = [];
    const c1 = await cli(leaf);
    c1.subscribe('orders.new', { queue: 'g', max: 3, callback: (x: Msg) => atLeaf.push(x.string()) });
    const atHub = collect(await cli(hub), 'orders.new', { queue: 'g' });
    await c1.flush();
    await groupReady(hub, m);
    const pub = await cli(m);
    const total = 300;
    for (let i = 0; i < total; i++) pub.publish('orders.new', String(i));
    await pub.flush();
    await until(() => atLeaf.length + atHub.length + hub.node.stats.dropped.noQueueMember + hub.cluster.badPeerEvents >= total, 'every event delivered or counted');
    expect(atLeaf).toHaveLength(3);
    expect(new Set([...atLeaf, ...atHub]).size).toBe(total);
    expect(atLeaf.length + atHub.length).toBe(total);
    // Its own events are still judged by its rules.
    const ownPub = await cli(leaf);
    const atHubOwn = collect(await cli(hub), '>');
    await until(async () => {
      ownPub.publish('telemetry.t', 'first');
      await ownPub.flush();
      return atHubOwn.includes('first');
    }, "the hub's interest at the leaf");
    ownPub.publish('orders.fake', 'no');
    ownPub.publish('telemetry.t', 'yes');
    await until(() => atHubOwn.includes('yes'), 'its telemetry');
    expect(atHubOwn).not.toContain('no');
  });

  it('one key cannot take every leaf link: past maxLeafLinksPerKey MB_ERR_TOO_MANY_CONNECTIONS, other keys still link', async () => {
    const hub = await node({ secret: SECRET, maxLeafLinksPerKey: 2 }, 'hub');
    await rawLeaf(hub, 'greedy');
    await rawLeaf(hub, 'greedy');
    const third = await rawLeaf(hub, 'greedy', { wait: false });
    const refusal = await third.c.waitFor((g) => g.type === FrameType.ERROR, 5000);
    expect(refusal.error).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
    expect(decodeError(refusal.payload).message).toMatch(/maxLeafLinksPerKey 2/);
    await rawLeaf(hub, 'modest');
    expect(hub.cluster.peers().filter((p) => p.state === 'up')).toHaveLength(3);
  });

  it('cycling links with fresh ids says one up/down line a minute per key, not per link (before: 2 lines a cycle; the last one true: link-state-log.test.ts)', async () => {
    const log = logCapture();
    const hub = await node({ secret: SECRET }, 'hub', { logger: log.logger });
    for (let i = 0; i < 20; i++) {
      const { c, id } = await rawLeaf(hub, 'cycler');
      c.close();
      await until(() => !hub.cluster.peers().some((p) => p.id === id), 'link down');
    }
    const said = (msg: string) => log.records().filter((r) => r.msg === msg);
    expect(said('leaf link up')).toHaveLength(1);
    expect(said('leaf link down')).toHaveLength(0);
  });

  it('leaves sharing a key: each up/down line says how many of its links are up (before: "a up, b up, a down" ended on "down" while b was up)', async () => {
    const log = logCapture();
    const hub = await node({ secret: SECRET }, 'hub', { logger: log.logger });
    // The hub's own log of leaf links, with a window of 80 ms instead of a minute.
    Object.assign((hub.cluster as unknown as { leaves: object }).leaves, { upDown: new LinkStateLog(log.logger, 80) });
    const a = await rawLeaf(hub, 'shared');
    await rawLeaf(hub, 'shared');
    a.c.close();
    await until(() => !hub.cluster.peers().some((p) => p.id === a.id), 'a down');
    const lines = () => log.records().filter((r) => r.msg === 'leaf link up' || r.msg === 'leaf link down');
    await until(() => lines().length >= 2, 'the window ends');
    expect(lines()[0]).toMatchObject({ msg: 'leaf link up', leaf: a.id, linksUp: 1 });
    expect(lines().at(-1)).toMatchObject({ msg: 'leaf link down', leaf: a.id, linksUp: 1, suppressed: 2 });
  });

  it('publishes no dead letters (`_DLQ`) unless its label\'s rules name them', async () => {
    const hub = await node({ secret: SECRET, leafPermissions: { 'dlq-ok': { publish: { allow: ['_DLQ.>', 'edge.>'] } } } }, 'hub');
    const c = await cli(hub);
    const letters = collect(c, '_DLQ.g');
    const plain = collect(c, 'edge.ok');
    await c.flush();
    for (const label of ['plain-1', 'dlq-ok']) {
      const { c: raw, id } = await rawLeaf(hub, label);
      const t = Date.now() * 1000;
      const stamp = (topic: string, seq: number) => ({ type: FrameType.PUB, topic, payload: Buffer.from(`${label}:${topic}`), origin: Buffer.from(id, 'hex'), seq, maxHops: 8 });
      raw.send(stamp('_DLQ.g', t + 1), stamp('edge.ok', t + 2));
      await until(() => plain.includes(`${label}:edge.ok`), `${label}'s plain event`);
    }
    await c.flush();
    expect(letters).toEqual(['dlq-ok:_DLQ.g']);
  });

  it('a revoked label is told only to who holds its key: asking with another id hears what any wrong key hears', async () => {
    const hub = await node({ secret: SECRET, deniedLeafKeys: ['lost-2'] }, 'hub');
    const guess = await rawLeaf(hub, 'lost-2', { id: randomBytes(8).toString('hex'), wait: false });
    const told = decodeError((await guess.c.waitFor((g) => g.type === FrameType.ERROR, 5000)).payload).message;
    expect(told).not.toMatch(/revoked/);
    expect(told).toMatch(/is not the one leaf key lost-2 makes/);
    const holder = await rawLeaf(hub, 'lost-2', { wait: false });
    const answer = await holder.c.waitFor((g) => g.type === FrameType.ERROR, 5000);
    expect(answer.error).toBe('MB_ERR_AUTH_FAILED');
    expect(decodeError(answer.payload).message).toMatch(/revoked on this node \(--deny-leaf-keys\)/);
  });
});
