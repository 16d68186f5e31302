/**
 * drain() waits for its round trip until drainTimeout, not requestTimeout
 * (SDK README "drain"). Review of 2026-12-04: with the node stopped
 * (SIGSTOP) for 8 s and 1,000 events of 100 KB published, drain() gave up
 * on its PONG at requestTimeout (5 s), swallowed that timeout, closed the
 * socket with ~96 MB unsent and resolved as a success: 40 of 1,000
 * delivered once the node came back, `unsent` 0. A SIGTERM handler awaiting
 * drain() exited believing everything was handed over. Now a node that
 * comes back within drainTimeout gets every event, and one that does not
 * makes drain() reject with MB_ERR_TIMEOUT. TCP and WebSocket, a real node
 * process.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '@meshbus/testkit';
import { connect } from '../src/index.js';
import { spawnedKit, spawnedNodeWithCounter } from './helpers.js';

const { procs, clients } = spawnedKit();

const EVENTS = 200;
const SIZE = 100_000;

async function setUp(kind: 'TCP' | 'WebSocket', drainTimeout: number) {
  const { node, url, got } = await spawnedNodeWithCounter(kind, 'd.x', ['--max-payload', String(1024 * 1024)], procs, clients);
  // requestTimeout far under drainTimeout: the old drain gave up at requestTimeout.
  const pub = await connect(url, { reconnect: false, requestTimeout: 1000, drainTimeout, pingInterval: 60_000 });
  clients.push(pub);
  node.child.kill('SIGSTOP');
  for (let i = 0; i < EVENTS; i++) pub.publish('d.x', new Uint8Array(SIZE));
  return { node, pub, got };
}

describe('drain() against a node that stops answering', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: the node back within drainTimeout gets every event published before drain()`, async () => {
      const { node, pub, got } = await setUp(kind, 20_000);
      const drained = pub.drain();
      await sleep(3000);
      node.child.kill('SIGCONT');
      await drained;
      for (let i = 0; i < 50 && got() < EVENTS; i++) await sleep(100);
      // Before: drain() resolved at 1 s (requestTimeout) with most bytes unsent; a few of the 200 arrived.
      expect(got()).toBe(EVENTS);
    }, 30_000);

    it(`${kind}: a node not back within drainTimeout makes drain() reject with MB_ERR_TIMEOUT`, async () => {
      const { node, pub } = await setUp(kind, 2500);
      const outcome = pub.drain().then(
        () => 'resolved',
        (e: { code?: string }) => e.code,
      );
      // Before: 'resolved' at 1 s.
      expect(await outcome).toBe('MB_ERR_TIMEOUT');
      node.child.kill('SIGCONT');
    }, 30_000);
  }
});
