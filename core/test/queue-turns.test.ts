/**
 * Queue groups take turns each on their own. The node kept one round-robin
 * counter for every group: with two groups on a topic each event moved it
 * twice, so a group of two members always landed on the same one (the
 * other got nothing: 100 / 0 of 100). Found when a test's hub had an
 * auditor group beside a work group. Real node, raw clients over loopback.
 */
import { expect, it } from 'vitest';
import { nodeKit } from '@meshbus/testkit';
import { startNode } from '../src/index.js';

const kit = nodeKit({ start: startNode });

it('two groups on one topic: each member of a two-member group gets half the events, the other group every event', async () => {
  const n = await kit.node();
  const a1 = await kit.raw(n);
  const a2 = await kit.raw(n);
  const b = await kit.raw(n);
  a1.sub('job', 1, { q: 'work' });
  a2.sub('job', 1, { q: 'work' });
  b.sub('job', 1, { q: 'audit' });
  await Promise.all([a1.flush(), a2.flush(), b.flush()]);
  const pub = await kit.raw(n);
  const N = 100;
  for (let i = 0; i < N; i++) pub.pub('job', String(i));
  await pub.flush();
  await Promise.all([a1.flush(), a2.flush(), b.flush()]);
  expect(a1.events('job').length + a2.events('job').length).toBe(N);
  expect(a1.events('job')).toHaveLength(N / 2);
  expect(a2.events('job')).toHaveLength(N / 2);
  expect(b.events('job')).toHaveLength(N);
});

it('many topics under one wildcard group: the first event of each new topic does not always go to the same member', async () => {
  const n = await kit.node();
  const a1 = await kit.raw(n);
  const a2 = await kit.raw(n);
  a1.sub('job.*', 1, { q: 'work' });
  a2.sub('job.*', 1, { q: 'work' });
  await Promise.all([a1.flush(), a2.flush()]);
  const pub = await kit.raw(n);
  const N = 200;
  for (let i = 0; i < N; i++) pub.pub(`job.${i}`, String(i));
  await pub.flush();
  await Promise.all([a1.flush(), a2.flush()]);
  const one = a1.events().length;
  expect(one + a2.events().length).toBe(N);
  // Each first pick is a coin toss: 200 tosses all one way, or within 40 of it, has odds far below 1e-15.
  expect(one).toBeGreaterThan(40);
  expect(one).toBeLessThan(N - 40);
});
