import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { nodeKit, RawWs, type RawFrames } from '@meshbus/testkit';
import { signHs256, startNode, type MeshNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { SECRET } from '../jwt-helpers.js';

// A run of events (publish-run.ts) may span topics (one wildcard subscription alone receives them:
// RoutingTable.route's shared receivers). What a receiver filters per topic at delivery (a token's
// subscribe deny under an allowed wildcard) must then hold for every event of the run, not only its first.

const kit = nodeKit({ start: startNode, defaults: { jwt: { hs256Secret: SECRET } } });
const pub = (topic: string, data: string): FrameSpec => ({ type: FrameType.PUB, topic, payload: Buffer.from(data) });
const oneChunk = (...specs: FrameSpec[]): Buffer => Buffer.concat(specs.map((s) => encodeFrame(s)));

for (const via of ['tcp', 'ws'] as const) {
  describe(`a run across topics over ${via}`, () => {
    async function client(n: MeshNode, token: string): Promise<RawFrames> {
      if (via === 'tcp') return kit.raw(n, { token });
      const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
      kit.defer(() => g.close());
      const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello: { token } });
      kit.defer(() => c.ws.terminate());
      return c;
    }

    it("never hands a receiver an event on a topic its token's subscribe deny filters out", async () => {
      const n = await kit.node();
      const limited = signHs256({ sub: 'svc', permissions: { subscribe: { allow: ['orders.>', 'audit.>'], deny: ['orders.internal', 'orders.*.secret'] } } }, SECRET);
      const c = await client(n, limited);
      const p = await client(n, signHs256({ sub: 'ops' }, SECRET));
      c.sub('orders.>', 1); // overlaps the denied topics: accepted, filtered at delivery
      c.sub('audit.end', 2);
      await c.flush();
      p.sendBytes(oneChunk(pub('orders.eu', '1'), pub('orders.internal', '2'), pub('orders.us', '3'), pub('orders.us.secret', '4'), pub('orders.eu', '5')));
      // And the denied topic first: the run starts on an event the receiver does not get.
      p.sendBytes(oneChunk(pub('orders.internal', '6'), pub('orders.eu', '7'), pub('orders.us.secret', '8'), pub('orders.us', '9')));
      p.pub('audit.end', 'end');
      await p.flush();
      await c.waitFor((g) => g.type === FrameType.PUB && g.topic === 'audit.end');
      expect(c.events().map((g) => `${g.topic}:${g.payload.toString()}`)).toEqual(['orders.eu:1', 'orders.us:3', 'orders.eu:5', 'orders.eu:7', 'orders.us:9', 'audit.end:end']);
    });

    it('a deny that an AUTH refresh brings filters the runs after it', async () => {
      const n = await kit.node();
      const c = await client(n, signHs256({ sub: 'svc' }, SECRET));
      const p = await client(n, signHs256({ sub: 'ops' }, SECRET));
      c.sub('orders.>', 1);
      await c.flush();
      const narrower = signHs256({ sub: 'svc', permissions: { subscribe: { allow: ['orders.>'], deny: ['orders.internal'] } } }, SECRET);
      c.send({ type: FrameType.AUTH, correlation: 9, payload: encodeBody({ token: narrower }) });
      await c.waitFor((g) => g.type === FrameType.ACK && g.correlation === 9);
      p.sendBytes(oneChunk(pub('orders.eu', '1'), pub('orders.internal', '2'), pub('orders.us', '3'), pub('orders.internal', '4'), pub('orders.end', 'end')));
      await c.waitFor((g) => g.type === FrameType.PUB && g.topic === 'orders.end');
      expect(c.events().map((g) => `${g.topic}:${g.payload.toString()}`)).toEqual(['orders.eu:1', 'orders.us:3', 'orders.end:end']);
    });
  });
}
