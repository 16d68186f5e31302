/**
 * Nodes with different `maxTopicLength` (1,024 and the default 256) on one
 * link, as the mixed maxPayload review found for payloads: the node with the
 * smaller limit refused the longer topics its peer had accepted, as a
 * malformed frame (counted in protocolErrors, logged at most), and its
 * subscribers never got them; the publisher heard nothing. A node's limit
 * bounds what its clients publish; an event from a peer was checked where it
 * was published. Fails before (the 602-byte topic never arrived).
 */
import { expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { until, cleanups } from '@meshbus/testkit';
import { remoteInterest, startMeshNode, stopMeshNode } from './mesh-helpers.js';

const cleanup = cleanups();

it('an event whose topic the publishing node allows reaches subscribers on a node with a smaller maxTopicLength', async () => {
  const a = await startMeshNode({}, 'a', { maxTopicLength: 1024 });
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  cleanup.push(() => stopMeshNode(b), () => stopMeshNode(a));
  await until(() => a.cluster.link(b.node.id)?.state === 'up', 'linked', 5000);
  const sub = await connect(b.url);
  cleanup.push(() => sub.close());
  const got: string[] = [];
  sub.subscribe('t.>', { callback: (m) => void got.push(m.topic) });
  await sub.flush();
  await until(() => remoteInterest(a) > 0, 'interest at a', 5000);
  const pub = await connect(a.url);
  cleanup.push(() => pub.close());
  const long = 't.' + 'x'.repeat(600);
  pub.publish(long, '1');
  pub.publish('t.short', '2');
  await until(() => got.length === 2, 'both events at b', 5000);
  expect(got).toEqual([long, 't.short']);
  expect(b.node.stats.protocolErrors).toBe(0);
  // b's own clients are still held to b's limit.
  expect(() => sub.publish(long, 'x')).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_TOPIC' }));
});
