import { expect, it } from 'vitest';
import { RawClient, cleanups, until } from '@meshbus/testkit';
import { signHs256 } from '@meshbus/core';
import { fullyMeshed, remoteInterest, startMeshNode, stopMeshNode } from './mesh-helpers.js';

/**
 * A queue group with a member on the publisher's node whose token denies
 * the topic, and one on another node that may receive it. Before, members
 * on the publisher's node were preferred whoever they were: the denied one
 * was picked and dropped every event, 20 of 20 lost (hostile review,
 * twentieth session). Now a tier whose members all refuse the event is
 * passed over like an empty one (RoutingTable.pick), and the remote member
 * gets each event once.
 */
const SECRET = 'queue-permissions-mesh-secret-32-bytes';
const cleanup = cleanups();
const token = (sub: string, permissions?: unknown): string => signHs256({ sub, exp: Math.floor(Date.now() / 1000) + 300, ...(permissions ? { permissions } : {}) }, SECRET);

it('a local member that may not receive the topic leaves the event to a member on another node', async () => {
  const a = await startMeshNode({ secret: 'mesh-secret-q-perm' }, 'a', { jwt: { hs256Secret: SECRET } });
  cleanup.push(() => stopMeshNode(a));
  const b = await startMeshNode({ secret: 'mesh-secret-q-perm', seeds: [a.peerAddr] }, 'b', { jwt: { hs256Secret: SECRET } });
  cleanup.push(() => stopMeshNode(b));
  await until(() => fullyMeshed([a, b]), 'a and b linked');
  const denied = await RawClient.connect(b.node.port, { token: token('mallory', { subscribe: { deny: ['jobs.secret'] } }) });
  const remote = await RawClient.connect(a.node.port, { token: token('worker') });
  const pub = await RawClient.connect(b.node.port, { token: token('publisher') });
  cleanup.push(() => [denied, remote, pub].forEach((c) => c.close()));
  denied.sub('jobs.>', 1, { q: 'w' });
  remote.sub('jobs.>', 1, { q: 'w' });
  await denied.flush();
  await remote.flush();
  await until(() => remoteInterest(b) > 0, "a's member known at b");
  for (let i = 0; i < 20; i++) pub.pub('jobs.secret', `s${i}`);
  await pub.flush();
  await remote.waitUntil(() => remote.events('jobs.secret').length === 20, 'every event at the member that may receive it');
  await denied.flush();
  expect(denied.events('jobs.secret')).toHaveLength(0);
});
