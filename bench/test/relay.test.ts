import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, freePort, sleep, until } from '@meshbus/testkit';
import { runBench } from '../src/run.js';

const RELAY = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'relay-server.js');

// The ceiling target: a real relay process, raw clients and the SDK through the harness.
describe('relay (the ceiling)', () => {
  let proc: ChildProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    proc = spawn(process.execPath, [RELAY, '--port', String(port)], { stdio: 'ignore' });
    await until(async () => {
      try {
        (await RawClient.connect(port)).close();
        return true;
      } catch {
        return false;
      }
    }, 'relay listening');
  });
  afterAll(() => {
    proc.kill('SIGKILL');
  });

  it('answers HELLO with WELCOME and each PING with its PONG, and passes PUB bytes through unchanged however the stream is cut', async () => {
    const sub = await RawClient.connect(port);
    sub.sub('bench.>', 1);
    await sub.flush();
    const pub = await RawClient.connect(port);
    const payloads = [Buffer.from('first'), Buffer.alloc(300, 7), Buffer.from('third')];
    let expected = 0;
    let ping = 100;
    // Written in pieces of k bytes, a pause between pieces, so the relay reads frames cut at many places (inside the length, the type, the body).
    for (const k of [1, 5, 61, 1000]) {
      const pings = [++ping, ++ping];
      const frames = [
        encodeFrame({ type: FrameType.PUB, topic: 'bench.a', payload: payloads[0] }),
        encodeFrame({ type: FrameType.PING, correlation: pings[0] }),
        encodeFrame({ type: FrameType.PUB, topic: 'bench.b', payload: payloads[1] }),
        encodeFrame({ type: FrameType.PUB, topic: 'bench.c', payload: payloads[2] }),
        encodeFrame({ type: FrameType.PING, correlation: pings[1] }),
      ];
      const bytes = Buffer.concat(frames);
      for (let i = 0; i < bytes.length; i += k) {
        pub.socket.write(bytes.subarray(i, i + k));
        await sleep(k === 1 ? 0 : 1);
      }
      expected += 3;
      for (const n of pings) await pub.waitFor((g) => g.type === FrameType.PONG && g.correlation === n);
      await until(() => sub.events().length === expected, `${expected} events at the subscriber`);
    }
    const got = sub.events();
    expect(got.map((g) => g.topic)).toEqual(Array.from({ length: 4 }, () => ['bench.a', 'bench.b', 'bench.c']).flat());
    for (let i = 0; i < got.length; i++) expect(got[i]!.payload.equals(payloads[i % 3]!)).toBe(true);
    // The publisher, which never subscribed, receives no events.
    expect(pub.events()).toHaveLength(0);
    pub.close();
    sub.close();
  }, 30_000);

  it('closes a connection whose first frame is not HELLO', async () => {
    const c = await RawClient.connect(port, false);
    c.send({ type: FrameType.SUB, topic: 'x', correlation: 1, payload: encodeBody({}) });
    await c.waitClosed();
  });

  it('runs 1 → 1 in the harness with the meshbus SDK clients and loses nothing', async () => {
    // 1 s measured: at 0.3 s a loaded 2-core machine could deliver every measured event in one read (rate 0, ratio 0).
    const report = await runBench({ targets: ['meshbus', 'relay'], scenarios: ['1to1'], sizes: [16], durationMs: 1000, warmupMs: 200, log: () => {} });
    const m = report.results.find((x) => x.target === 'meshbus')!;
    expect(m.error).toBeUndefined();
    expect(m.rate).toBeGreaterThan(0);
    const r = report.results.find((x) => x.target === 'relay')!;
    expect(r.error).toBeUndefined();
    expect(r.rate).toBeGreaterThan(0);
    expect(r.lost).toBe(0);
    expect(r.outOfOrder).toBe(0);
    expect(report.ratios[0]?.ratio.relay).toBeGreaterThan(0);
  }, 60_000);

  it('does not run where it cannot stand in for a node (no row for it)', async () => {
    const report = await runBench({ targets: ['relay'], scenarios: ['fanout10'], sizes: [16], durationMs: 100, warmupMs: 50, log: () => {} });
    expect(report.results).toHaveLength(0);
  });
});
