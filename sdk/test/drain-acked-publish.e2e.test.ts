/**
 * Acked publishes across a node's drain (SPEC 10.7). A client publishing
 * with `ack: true` to a durable topic while its node drains (SIGTERM,
 * rolling restart) had every publish still waiting for Redis at the GOODBYE
 * rejected MB_ERR_CONNECTION_CLOSED ("outcome unknown") although the node
 * stored it: the ACK came after the GOODBYE, which is the last frame. An
 * application that published those again stored them twice; one that did
 * not could not know. Now the node sends the GOODBYE once every acked
 * publish it read is answered, refuses the ones it reads meanwhile (NACK
 * MB_ERR_DRAINING) and takes none after it; the SDK sends the unanswered
 * ones again on its next connection. Over TCP and the WebSocket gateway:
 * every publish resolves, each event is stored exactly once.
 */
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { WsGateway } from '@meshbus/core/ws';
import { nodeKit, ownRedisServers, sleep, url } from '@meshbus/testkit';
import type { MeshNode } from '@meshbus/core';
import { connect } from '../src/index.js';
import { storedOnce } from './helpers.js';

const fx = nodeKit();
const redis = ownRedisServers();

async function endpoint(n: MeshNode, kind: 'TCP' | 'WebSocket'): Promise<string> {
  if (kind === 'TCP') return url(n);
  const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  return `ws://127.0.0.1:${gw.port}/`;
}


describe('acked publishes across a node drain', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: each is acknowledged and stored exactly once, none rejected`, async (ctx) => {
      const r = await redis.start(ctx);
      const rc = new Redis(r.port, '127.0.0.1');
      fx.defer(() => void rc.disconnect());
      const prefix = `drainack${kind}:`;
      const durable = { redis: r.url, prefix, topics: [{ pattern: 'dp.>', history: { size: 100_000 } }] };
      const a = await fx.node({ durable, drainTimeout: 4000 });
      const b = await fx.node({ durable });
      const c = fx.track(await connect([await endpoint(a, kind), await endpoint(b, kind)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
      const N = 3000;
      const outcomes: Array<Promise<string>> = [];
      let draining: Promise<void> | undefined;
      for (let i = 0; i < N; i++) {
        outcomes.push(c.publish('dp.t', String(i), { ack: true })!.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e)));
        // Start the drain with hundreds of acked publishes on the wire or waiting for Redis, and keep publishing.
        if (i === 1000) draining = a.shutdown();
        if (i % 100 === 99) await sleep(1);
      }
      const got = await Promise.all(outcomes);
      await draining;
      const failed = got.map((o, i) => [i, o] as const).filter(([, o]) => o !== 'ok');
      // Before: tens to hundreds rejected MB_ERR_CONNECTION_CLOSED, most of them stored all the same.
      expect(failed.slice(0, 5)).toEqual([]);
      expect(await storedOnce(rc, prefix, N)).toEqual({ twice: [], missing: [], stored: N });
      expect(c.isConnected).toBe(true);
    }, 30_000);
  }
});
