/**
 * A connected client's unsent bytes are bounded (maxPendingBytes, SDK
 * README "Options"). Review of 2026-12-04: a publisher in a tight loop
 * toward a stopped node reached 9-11 GB of RSS before liveness closed the
 * connection, and over WebSocket one faster than its node held ~2.9 GB:
 * offline publishes were bounded by the outbox, online ones by nothing.
 * Now a publish, request or reply past the bound throws ClientError
 * MB_ERR_SEND_BUFFER_FULL (nothing sent), `pendingBytes` says what waits,
 * and `whenWritable()` waits for room. TCP and WebSocket, a real node
 * process stopped with SIGSTOP. The review of that change: whenWritable()
 * resolved in the caller's turn when its condition held, so a loop of
 * "publish; on a *_FULL error await whenWritable()" spun for ever at 100 %
 * CPU, the socket and the reconnect timers never served (offline with the
 * outbox full: no reconnect in 5 s though the node was back).
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '@meshbus/testkit';
import { connect } from '../src/index.js';
import { spawnedKit, spawnedNodeWithCounter } from './helpers.js';

const { procs, clients } = spawnedKit();

const MiB = 1024 * 1024;
const SIZE = 100_000;
const BOUND = 8 * MiB;

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('a connected client holds at most maxPendingBytes unsent', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: toward a stopped node, publishes past the bound throw MB_ERR_SEND_BUFFER_FULL; whenWritable() waits; nothing accepted is lost`, async () => {
      const { node, url, got } = await spawnedNodeWithCounter(kind, 'b.x', ['--max-payload', String(MiB)], procs, clients);
      const pub = await connect(url, { reconnect: false, maxPendingBytes: BOUND, pingInterval: 60_000 });
      clients.push(pub);
      node.child.kill('SIGSTOP');
      let accepted = 0;
      let refused: string | undefined;
      // 400 MB offered: the old client took all of it (held in memory while the node was stopped).
      for (let i = 0; i < 4000 && refused === undefined; i++) {
        refused = codeOf(() => pub.publish('b.x', new Uint8Array(SIZE)));
        if (refused === undefined) accepted++;
        // Let the batch reach the transport (and the kernel take what it takes) between events.
        if (i % 16 === 15) await sleep(1);
      }
      expect(refused).toBe('MB_ERR_SEND_BUFFER_FULL');
      expect(pub.pendingBytes).toBeGreaterThan(BOUND - SIZE);
      expect(pub.pendingBytes).toBeLessThanOrEqual(BOUND + SIZE);
      // The same bound for requests (rejected) and whatever else sends events.
      await expect(pub.request('b.y', new Uint8Array(SIZE), { timeout: 1000 })).rejects.toMatchObject({ code: 'MB_ERR_SEND_BUFFER_FULL' });
      // And subscriptions (a subscribe/unsubscribe loop grew 150 MiB in 6 s past an 8 MiB bound): refused once past it.
      let subRefused: string | undefined;
      for (let i = 0; i < 100_000 && subRefused === undefined; i++) subRefused = codeOf(() => pub.subscribe(`b.${'z'.repeat(200)}`).unsubscribe());
      expect(subRefused).toBe('MB_ERR_SEND_BUFFER_FULL');
      expect(pub.pendingBytes).toBeLessThanOrEqual(BOUND + SIZE);
      let writable = false;
      const room = pub.whenWritable().then(() => (writable = true));
      await sleep(300);
      expect(writable).toBe(false);
      node.child.kill('SIGCONT');
      await room;
      expect(pub.pendingBytes).toBeLessThanOrEqual(BOUND / 2);
      await pub.flush(20_000);
      for (let i = 0; i < 50 && got() < accepted; i++) await sleep(100);
      expect(got()).toBe(accepted);
    }, 40_000);
  }

  it('one event larger than the bound goes when nothing waits; a bad bound is refused at connect', async () => {
    const { url, got } = await spawnedNodeWithCounter('TCP', 'b.x', ['--max-payload', String(4 * MiB)], procs, clients);
    const pub = await connect(url, { reconnect: false, maxPendingBytes: 1024 });
    clients.push(pub);
    expect(pub.pendingBytes).toBe(0);
    pub.publish('b.x', new Uint8Array(2 * MiB));
    await pub.flush(10_000);
    for (let i = 0; i < 50 && got() < 1; i++) await sleep(100);
    expect(got()).toBe(1);
    await pub.whenWritable(0);
    for (const bad of [-1, 0, Number.NaN]) {
      await expect(connect(url, { maxPendingBytes: bad })).rejects.toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT' });
    }
    await pub.close();
    await expect(pub.whenWritable()).rejects.toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
  }, 20_000);

  it('whenWritable() lets the event loop run: a publish-or-wait loop offline with a full outbox reconnects and gets through', async () => {
    const { url, got } = await spawnedNodeWithCounter('TCP', 'b.x', [], procs, clients);
    const pub = await connect(url, { outbox: { maxMessages: 5 } });
    clients.push(pub);
    pub.suspend();
    // The app comes back in 200 ms: a timer, which the old loop never let run.
    setTimeout(() => pub.resume(), 200);
    let sent = 0;
    const end = Date.now() + 5000;
    while (sent < 50 && Date.now() < end) {
      try {
        pub.publish('b.x', 'x');
        sent++;
      } catch (e) {
        if ((e as { code?: string }).code !== 'MB_ERR_OUTBOX_FULL') throw e;
        await pub.whenWritable();
      }
    }
    // Before: 5 (the outbox), the loop spinning until its 5 s guard.
    expect(sent).toBe(50);
    await pub.flush();
    for (let i = 0; i < 50 && got() < 50; i++) await sleep(100);
    expect(got()).toBe(50);
  }, 20_000);
});
