/**
 * A pure publisher is not declared stale by its own upload (proto Liveness,
 * "Flowing"). Review of 2026-12-04: a publisher whose pingInterval (500 ms)
 * was shorter than its node's (20 s) uploading 1 GB, its event loop never
 * blocked, was closed MB_ERR_STALE_CONNECTION at 1.5 s while the node was
 * alive and reading: its PINGs waited behind its own unsent bytes and the
 * node's keepalive comes only every 20 s. Now a PING behind this end's own
 * moving output is not unanswered. A real node process; TCP and WebSocket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, type NodeProcess } from '@meshbus/testkit';
import { connect, type Client, type Status } from '../src/index.js';
import { spawnedNodeWithCounter } from './helpers.js';

const procs: NodeProcess[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const p of procs.splice(0)) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
});

const MiB = 1024 * 1024;

describe('a publisher uploading more than its node reads in a ping interval', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: stays connected while its backlog moves`, async () => {
      const { url, got } = await spawnedNodeWithCounter(kind, 'b.x', ['--ping-interval', '20000'], procs, clients);
      const pub = await connect(url, { reconnect: false, pingInterval: 100, maxPingOut: 2 });
      clients.push(pub);
      const faults: string[] = [];
      pub.on('status', (s: Status) => {
        if (s.type === 'disconnected' || s.type === 'error') faults.push(`${s.type} ${s.error?.code ?? ''}`);
      });
      const payload = new Uint8Array(64 * 1024);
      let published = 0;
      // 512 MiB, 1 MiB per turn of the event loop (never blocked for long): far more than moves in the three 100 ms intervals a stale verdict took.
      for (let i = 0; i < 512 && faults.length === 0; i++) {
        for (let j = 0; j < 16; j++) pub.publish('b.x', payload);
        published += 16;
        await new Promise((r) => setImmediate(r));
      }
      await pub.flush(60_000);
      for (let i = 0; i < 100 && got() < published; i++) await sleep(100);
      // Before: MB_ERR_STALE_CONNECTION within about a second, the rest of the upload lost.
      expect(faults).toEqual([]);
      expect(got()).toBe(published);
      expect(published).toBe(512 * 16);
    }, 90_000);
  }
});
