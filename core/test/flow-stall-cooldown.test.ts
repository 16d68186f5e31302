import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshNode, silentLogger, startNode } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';
import { RawClient, RawWs, until, type RawFrames } from '@meshbus/testkit';

/**
 * A source is held at most one maxStall in every STALL_COOLDOWN + 1, however
 * many receivers stop reading (SPEC 10.6). Replayed from nats-server #2631
 * ("Slow consumer causes messages delay in other clients"): connections that
 * subscribe and never read, opened one after another, each made a full stall
 * of its own: 20 of them 0.5 s apart held a publisher ~72 % of 10 s.
 */
const nodes: MeshNode[] = [];
const gateways: WsGateway[] = [];
const clients: RawFrames[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const g of gateways.splice(0)) await g.close();
  for (const n of nodes.splice(0)) await n.close();
});

for (const kind of ['TCP', 'WebSocket'] as const) {
  describe(`${kind}: stuck subscribers one after another`, () => {
    it('pause the publisher once, not once each: the later ones are overrun at once (slow consumers)', async () => {
      const n = await startNode({ port: 0, logger: silentLogger, maxStall: 1000, maxPending: 4 * 1024 * 1024 });
      nodes.push(n);
      let wsPort = 0;
      if (kind === 'WebSocket') {
        const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
        gateways.push(g);
        wsPort = g.port;
      }
      const pub = await RawClient.connect(n.port);
      clients.push(pub);
      let stop = false;
      let sent = 0;
      const data = randomBytes(4096);
      // Bounded: at most 400,000 events (1.6 GB), waiting whenever the node stops reading.
      const pumping = (async () => {
        while (!stop && sent < 400_000) {
          if (pub.socket.writableNeedDrain) await new Promise((r) => setTimeout(r, 2));
          else {
            pub.pub('feed', data);
            if (++sent % 32 === 0) await new Promise((r) => setImmediate(r));
          }
        }
      })();
      const t0 = Date.now();
      try {
        for (let k = 1; k <= 4; k++) {
          const s = kind === 'TCP' ? await RawClient.connect(n.port) : await RawWs.connect(`ws://127.0.0.1:${wsPort}/`);
          clients.push(s);
          s.sub('feed', 1);
          await s.flush();
          s.pauseReading();
          // Each is closed as a slow consumer (its policy, 'disconnect'), before or after a stall.
          await until(() => n.stats.slowConsumers >= k, `slow consumer ${k}`, 15_000);
        }
      } finally {
        stop = true;
        await pumping;
      }
      // At most one stall in every 11 maxStalls (the cooldown is 10): old code, one full stall per stuck subscriber
      // (4 in ~5 s). A loaded machine may take longer than one cooldown for the four, hence the elapsed time.
      const allowed = Math.ceil((Date.now() - t0) / 11_000);
      expect(n.stats.flowStalls).toBeGreaterThanOrEqual(1);
      expect(n.stats.flowStalls).toBeLessThanOrEqual(allowed);
      expect(n.stats.slowConsumers).toBe(4);
    }, 30_000);
  });
}
