import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { nodeKit, RawWs, type RawFrames } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';

// A node delivers a client's back-to-back PUBs on one topic as one range (publish-run.ts).
// What every receiver gets must be what one delivery per event gives: these send whole
// chunks (one write, one WebSocket message) mixing runs with everything that ends one.

const kit = nodeKit({ start: startNode });

const pub = (topic: string, data: string): FrameSpec => ({ type: FrameType.PUB, topic, payload: Buffer.from(data) });
const sub = (topic: string, sid: number): FrameSpec => ({ type: FrameType.SUB, topic, correlation: sid, payload: encodeBody({}) });
const oneChunk = (...specs: FrameSpec[]): Buffer => Buffer.concat(specs.map((s) => encodeFrame(s)));

/** Events (topic:payload) and the other frames a client got, in order, after its WELCOME. */
function seen(c: RawFrames): string[] {
  return c.got
    .filter((g) => g.type !== FrameType.WELCOME && g.type !== FrameType.ACK)
    .map((g) => (g.type === FrameType.PUB ? `${g.topic}:${g.payload.toString()}` : g.error ? `${g.typeName} ${g.error}` : g.typeName));
}

async function gateway(n: MeshNode): Promise<WsGateway> {
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  kit.defer(() => g.close());
  return g;
}

for (const via of ['tcp', 'ws'] as const) {
  describe(`runs of events over ${via}`, () => {
    async function clients(n: MeshNode, count: number, hello: Record<string, unknown> = {}): Promise<RawFrames[]> {
      if (via === 'tcp') return Promise.all(Array.from({ length: count }, (_, i) => kit.raw(n, i === 0 ? hello : {})));
      const g = await gateway(n);
      return Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello: i === 0 ? hello : {} });
          kit.defer(() => c.ws.terminate());
          return c;
        }),
      );
    }

    it('a chunk mixing topics, subscription changes and a PING: each receiver gets what it subscribed to, in order, the PONG last', async () => {
      const n = await kit.node();
      const [p, a, b] = (await clients(n, 3)) as [RawFrames, RawFrames, RawFrames];
      a.sub('run.a', 1);
      b.sub('run.>', 1);
      p.sub('run.a', 7); // the publisher hears its own events (echo) while subscribed
      await Promise.all([a.flush(), b.flush(), p.flush()]);
      const before = n.stats.msgsOut;
      p.sendBytes(
        oneChunk(
          pub('run.a', '1'),
          pub('run.a', '2'),
          pub('run.b', '1'),
          pub('run.a', '3'),
          { type: FrameType.UNSUB, correlation: 7 },
          pub('run.a', '4'),
          sub('run.a', 8),
          pub('run.a', '5'),
          pub('run.a', '6'),
          { type: FrameType.PING, correlation: 99 },
        ),
      );
      await p.waitFor((g) => g.type === FrameType.PONG && g.correlation === 99);
      await a.waitFor((g) => g.payload.toString() === '6' && g.topic === 'run.a');
      await b.waitFor((g) => g.payload.toString() === '6' && g.topic === 'run.a');
      expect(seen(a)).toEqual(['PONG', 'run.a:1', 'run.a:2', 'run.a:3', 'run.a:4', 'run.a:5', 'run.a:6']);
      expect(seen(b)).toEqual(['PONG', 'run.a:1', 'run.a:2', 'run.b:1', 'run.a:3', 'run.a:4', 'run.a:5', 'run.a:6']);
      // Before its UNSUB and after its new SUB, not between; its PONG after all of them.
      expect(seen(p)).toEqual(['PONG', 'run.a:1', 'run.a:2', 'run.a:3', 'run.a:5', 'run.a:6', 'PONG']);
      // Counted per event and receiver, as single deliveries are: 6 + 7 + 5.
      expect(n.stats.msgsOut - before).toBe(18);
    });

    it('a chunk cycling topics of one wildcard subscriber (one run across topics), with a SUB and a limited receiver among them: each gets its own, in order', async () => {
      const n = await kit.node();
      const [p, a, b] = (await clients(n, 3)) as [RawFrames, RawFrames, RawFrames];
      a.sub('cyc.*', 1);
      b.sub('cyc.3', 1);
      b.send({ type: FrameType.UNSUB, correlation: 1, payload: encodeBody({ max: 1 }) });
      await Promise.all([a.flush(), b.flush()]);
      const events = (k: number): FrameSpec[] => [1, 2, 3, 4].map((t) => pub(`cyc.${t}`, String(k)));
      p.sendBytes(oneChunk(...events(1), ...events(2), sub('cyc.2', 5), ...events(3), { type: FrameType.PING, correlation: 9 }));
      await p.waitFor((g) => g.type === FrameType.PONG && g.correlation === 9);
      await a.waitFor((g) => g.topic === 'cyc.4' && g.payload.toString() === '3');
      const all = [1, 2, 3].flatMap((k) => [1, 2, 3, 4].map((t) => `cyc.${t}:${k}`));
      expect(seen(a)).toEqual(['PONG', ...all]);
      expect(seen(p)).toEqual(['cyc.2:3', 'PONG']);
      await b.flush();
      expect(seen(b)).toEqual(['PONG', 'cyc.3:1', 'PONG']);
    });

    it('an ERROR for a refused PUB reaches the publisher after its own earlier events, before its later ones', async () => {
      const n = await kit.node();
      const [p, r] = (await clients(n, 2)) as [RawFrames, RawFrames];
      p.sub('run.e', 1);
      r.sub('run.e', 1);
      await Promise.all([p.flush(), r.flush()]);
      // Only nodes publish on _TRACE: refused with a non-fatal ERROR, the connection stays.
      p.sendBytes(oneChunk(pub('run.e', '1'), pub('run.e', '2'), pub('_TRACE.x', 'forged'), pub('run.e', '3'), { type: FrameType.PING, correlation: 5 }));
      await p.waitFor((g) => g.type === FrameType.PONG && g.correlation === 5);
      await r.waitFor((g) => g.payload.toString() === '3');
      expect(seen(p)).toEqual(['PONG', 'run.e:1', 'run.e:2', 'ERROR MB_ERR_PERMISSION_DENIED', 'run.e:3', 'PONG']);
      expect(seen(r)).toEqual(['PONG', 'run.e:1', 'run.e:2', 'run.e:3']);
    });

    it('a publisher that asked for no echo is left out of its runs; the others get every event', async () => {
      const n = await kit.node();
      const [quiet, r] = (await clients(n, 2, { echo: false })) as [RawFrames, RawFrames];
      quiet.sub('run.q', 1);
      r.sub('run.q', 1);
      await Promise.all([quiet.flush(), r.flush()]);
      quiet.sendBytes(oneChunk(pub('run.q', '1'), pub('run.q', '2'), pub('run.q', '3'), { type: FrameType.PING, correlation: 6 }));
      await quiet.waitFor((g) => g.type === FrameType.PONG && g.correlation === 6);
      await r.waitFor((g) => g.payload.toString() === '3');
      expect(seen(quiet)).toEqual(['PONG', 'PONG']);
      expect(seen(r)).toEqual(['PONG', 'run.q:1', 'run.q:2', 'run.q:3']);
    });

    it('a run is at most one WebSocket message of the node (65,522 bytes), however large the message it came in', async () => {
      const n = await kit.node();
      const [p, r] = (await clients(n, 2)) as [RawFrames, RawFrames];
      r.sub('run.big', 1);
      await r.flush();
      const sizes: number[] = [];
      if (r instanceof RawWs) r.ws.on('message', (d: Buffer) => sizes.push(d.length));
      // 4,000 events of ~230 bytes in one write (one WebSocket message of ~920 KB over ws).
      const events = Array.from({ length: 4000 }, (_, i) => pub('run.big', `${i}:${'y'.repeat(150)}`));
      p.sendBytes(oneChunk(...events));
      await r.waitFor((g) => g.payload.toString().startsWith('3999:'), 10_000);
      const got = r.got.filter((g) => g.type === FrameType.PUB).map((g) => Number(g.payload.toString().split(':')[0]));
      expect(got).toEqual(Array.from({ length: 4000 }, (_, i) => i));
      if (via === 'ws') expect(Math.max(...sizes)).toBeLessThanOrEqual(65_522);
    });

    it('a receiver that stops reading is still a slow consumer, and the others get every event of the runs', async () => {
      const n = await kit.node({ maxPending: 256 * 1024, highWater: 64 * 1024 });
      const [p, fast, slow] = (await clients(n, 3)) as [RawFrames, RawFrames, RawFrames];
      fast.sub('run.s', 1);
      slow.sub('run.s', 1);
      await Promise.all([fast.flush(), slow.flush()]);
      slow.pauseReading();
      const payload = 'x'.repeat(1000);
      const total = 16_000; // 16 MB: far past what the kernel buffers and maxPending hold for the stopped reader
      for (let i = 0; i < total; i += 40) p.sendBytes(oneChunk(...Array.from({ length: 40 }, (_, k) => pub('run.s', `${i + k}:${payload}`))));
      await p.flush(20_000);
      await fast.waitFor((g) => g.payload.toString().startsWith(`${total - 1}:`), 20_000);
      const got = fast.got.filter((g) => g.type === FrameType.PUB).map((g) => Number(g.payload.toString().split(':')[0]));
      expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(n.stats.slowConsumers).toBe(1);
    }, 30_000);
  });
}
