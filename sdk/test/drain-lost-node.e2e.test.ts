/**
 * drain() rejects when a connection it used ends before the node confirmed
 * the events given to it (SDK README "drain"). Review of 2026-12-04: a node
 * killed (and restarted) during a drain with 30 MB unsent made drain()
 * resolve, with 0 or 1 of 300 events delivered: the flush's
 * MB_ERR_CONNECTION_CLOSED counted as an answer. Now it rejects with
 * MB_ERR_CONNECTION_CLOSED; a connection lost with every event confirmed
 * still lets it resolve. TCP and WebSocket, real node processes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, spawnNode, type NodeProcess } from '@meshbus/testkit';
import { connect, type Client, type ClientOptions } from '../src/index.js';
import { spawnedNodeWithCounter } from './helpers.js';

const procs: NodeProcess[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const p of procs.splice(0)) {
    p.child.kill('SIGCONT');
    p.child.kill('SIGKILL');
    await p.exited;
  }
});

const EVENTS = 300;
const SIZE = 100_000;

async function stoppedWithBacklog(kind: 'TCP' | 'WebSocket', options: ClientOptions, confirmFirst: boolean) {
  const { node, url } = await spawnedNodeWithCounter(kind, 'd.x', ['--max-payload', String(1024 * 1024)], procs, clients);
  const pub = await connect(url, { requestTimeout: 1000, drainTimeout: 20_000, pingInterval: 60_000, ...options });
  clients.push(pub);
  for (let i = 0; i < EVENTS; i++) pub.publish('d.x', new Uint8Array(SIZE));
  if (confirmFirst) await pub.flush(20_000);
  node.child.kill('SIGSTOP');
  return { node, url, pub };
}

const outcomeOf = (p: Promise<void>): Promise<string | undefined> =>
  p.then(
    () => 'resolved',
    (e: { code?: string }) => e.code,
  );

describe('drain() when its node goes away', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: a node killed with events unconfirmed makes drain() reject with MB_ERR_CONNECTION_CLOSED`, async () => {
      const { node, pub } = await stoppedWithBacklog(kind, { reconnect: false }, false);
      const outcome = outcomeOf(pub.drain());
      await sleep(300);
      node.child.kill('SIGKILL');
      // Before: 'resolved'.
      expect(await outcome).toBe('MB_ERR_CONNECTION_CLOSED');
    }, 30_000);

    it(`${kind}: with reconnect on, the drain rejects instead of resolving on the node restarted on the same ports`, async () => {
      const { node, url, pub } = await stoppedWithBacklog(kind, { reconnectBackoff: { base: 50, max: 200 } }, false);
      const outcome = outcomeOf(pub.drain());
      await sleep(300);
      node.child.kill('SIGKILL');
      await node.exited;
      const wsPort = kind === 'WebSocket' ? new URL(url).port : '0';
      procs.push(await spawnNode({ port: node.port, extra: ['--ws-port', wsPort] }));
      // Before: 'resolved' once the new node answered the drain's PING, though the events had died with the old one.
      expect(await outcome).toBe('MB_ERR_CONNECTION_CLOSED');
    }, 40_000);

    it(`${kind}: a node killed once every event was confirmed lets drain() resolve`, async () => {
      const { node, pub } = await stoppedWithBacklog(kind, { reconnect: false }, true);
      const outcome = outcomeOf(pub.drain());
      await sleep(300);
      node.child.kill('SIGKILL');
      expect(await outcome).toBe('resolved');
    }, 30_000);
  }
});
