// Issue #14 part 1: whatever throws while the client (re)connects, it holds
// at most one connection, loses no queued item without a word, and close()
// closes everything. Faults are injected at every step of attaching a
// connection (attachFaults, a test seam in client.ts) and in the transport
// (connect, each send), against a real node restarted on the same port.
import { afterEach, describe, expect, it } from 'vitest';
import type { MeshNode } from '@meshbus/core';
import { Fixture, until, url } from '@meshbus/testkit';
import { ClientError, connect as nodeConnect, type Msg, type Status, type Transport } from '../src/index.js';
import { attachFaults, connect, type AttachStep, type Client } from '../src/client.js';
import { durable } from '../src/durable.js';
import { nextStatus, recordStatus, tapTransport } from './helpers.js';

const fx = new Fixture();
afterEach(async () => {
  attachFaults.hook = undefined;
  await fx.teardown();
});

/** Client connections on `n`, not counting `others` known ones. */
const clientConns = (n: MeshNode, others: number): number => n.connectionCount - others;

/** A TCP transport factory whose next `connect` or n-th `send` (after arm()) throws. */
function faultyTransports() {
  const plan: { connect: boolean; sendAt: number; sends: number } = { connect: false, sendAt: 0, sends: 0 };
  const factory = (): Transport =>
    tapTransport({
      connect: (next) => {
        if (plan.connect) {
          plan.connect = false;
          throw new Error('injected: connect');
        }
        return next();
      },
      send: (chunks, next) => {
        if (plan.sendAt > 0 && ++plan.sends === plan.sendAt) throw new Error(`injected: send #${plan.sendAt}`);
        next();
      },
    });
  return { factory, plan };
}

describe('the issue example: a publish that cannot be encoded, made offline', () => {
  it('is refused at publish() offline exactly as online; the reconnect leaves one connection, one delivery each, and close() leaves none', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = fx.track(await nodeConnect(url(n), { reconnectBackoff: { base: 20, max: 100 } }));
    const got: Msg[] = [];
    c.subscribe('d', { callback: (m) => got.push(m) });
    await c.flush();
    const pad = { headers: { pad: 'x'.repeat(70000) } };
    const online = (() => {
      try {
        c.publish('x', 'x', pad);
      } catch (e) {
        return e;
      }
    })();
    expect(online).toBeInstanceOf(ClientError);
    expect((online as ClientError).code).toBe('MB_ERR_INVALID_ARGUMENT');
    expect((online as Error).message).not.toMatch(/decod/);
    await n.close();
    await until(() => !c.isConnected);
    c.publish('x', 'before');
    let offline: unknown;
    try {
      c.publish('x', 'x', pad);
    } catch (e) {
      offline = e;
    }
    expect(offline).toBeInstanceOf(ClientError);
    expect((offline as ClientError).code).toBe('MB_ERR_INVALID_ARGUMENT');
    expect((offline as Error).message).toBe((online as Error).message);
    c.publish('x', 'after');
    expect(c.outboxCount).toBe(2);
    const n2 = await fx.node({ port });
    const obs = fx.track(await nodeConnect(url(n2)));
    const xs: string[] = [];
    obs.subscribe('x', { callback: (m) => xs.push(m.string()) });
    await obs.flush();
    await until(() => c.isConnected && c.outboxCount === 0);
    await c.flush();
    await until(() => xs.length === 2);
    expect(xs).toEqual(['before', 'after']);
    expect(clientConns(n2, 1)).toBe(1);
    for (let i = 0; i < 5; i++) obs.publish('d', String(i));
    await obs.flush();
    await c.flush();
    await until(() => got.length >= 5);
    await c.flush();
    expect(got.map((m) => m.string())).toEqual(['0', '1', '2', '3', '4']);
    await c.close();
    await until(() => clientConns(n2, 1) === 0, 'the client connection to close', 5000);
  });
});

/** Where a fault is injected: a step of attach (with its index) or the transport. */
type Fault = { step: AttachStep; index: number } | { transport: 'connect' } | { transport: 'send'; at: number };

const FAULTS: Fault[] = [
  { transport: 'connect' },
  { transport: 'send', at: 1 }, // HELLO
  { transport: 'send', at: 2 }, // the SUB resends and the first outbox entry
  { transport: 'send', at: 3 }, // the second outbox entry
  { transport: 'send', at: 5 }, // the waiting request / acked publish, after the outbox
  { step: 'welcome', index: 0 },
  { step: 'sub', index: 0 },
  { step: 'sub', index: 1 },
  { step: 'outbox', index: 0 },
  { step: 'outbox', index: 1 },
  { step: 'outbox', index: 2 },
  { step: 'request', index: 0 },
  { step: 'ack', index: 0 },
  { step: 'heartbeat', index: 0 },
  { step: 'connected', index: 0 },
];

const label = (f: Fault): string => ('step' in f ? `attach step ${f.step}#${f.index}` : f.transport === 'send' ? `transport send #${f.at}` : 'transport connect');

describe('a throw at any step of (re)connecting', () => {
  for (const fault of FAULTS) {
    it(`${label(fault)}: one connection, no duplicates, every queued item sent or reported, close() leaves none`, async () => {
      const n = await fx.node();
      const port = n.port;
      const { factory, plan } = faultyTransports();
      const c: Client = fx.track(await connect(url(n), { transport: factory, durable, reconnectBackoff: { base: 20, max: 100 }, requestTimeout: 10_000 }));
      const statuses = recordStatus(c);
      const da: string[] = [];
      const db: string[] = [];
      const subA = c.subscribe('d.a', { callback: (m) => da.push(m.string()) });
      const subB = c.subscribe('d.b', { callback: (m) => db.push(m.string()) });
      await c.flush();
      await n.close();
      await until(() => !c.isConnected);
      for (const k of ['o.1', 'o.2', 'o.3']) c.publish(k, k);
      const reply = c.request('svc', 'q').then(
        (m) => ({ ok: m.string() }),
        (e: unknown) => ({ err: e as ClientError }),
      );
      const acked = c.publish('o.ack', 'a', { ack: true }).then(
        () => ({ ok: true }),
        (e: unknown) => ({ err: e as ClientError }),
      );
      // Arm the fault for the reconnect; it fires once.
      if ('step' in fault) {
        attachFaults.hook = (client, step, index) => {
          if (client === c && step === fault.step && index === fault.index) {
            attachFaults.hook = undefined;
            throw new Error(`injected: ${step}#${index}`);
          }
        };
      } else if (fault.transport === 'connect') plan.connect = true;
      else plan.sendAt = fault.at;
      const n2 = await fx.node({ port });
      const obs = fx.track(await nodeConnect(url(n2)));
      const os = new Map<string, number>();
      obs.subscribe('o.>', { callback: (m) => os.set(m.topic, (os.get(m.topic) ?? 0) + 1) });
      obs.subscribe('svc', { callback: (m) => m.respond('r') });
      await obs.flush();
      await until(() => c.isConnected && c.outboxCount === 0, 'reconnected with the outbox flushed', 10_000);
      await c.flush();
      await obs.flush();
      const rep = await reply;
      const ack = await acked;

      // One connection from c, whatever happened.
      expect(clientConns(n2, 1)).toBe(1);
      // Every outbox entry: delivered once, or reported with an error status naming it (never both, never neither).
      const refused = statuses.filter((s): s is Extract<Status, { type: 'error' }> => s.type === 'error' && s.entry !== undefined).map((s) => s.entry!.topic);
      for (const k of ['o.1', 'o.2', 'o.3']) {
        const delivered = os.get(k) ?? 0;
        expect(delivered + refused.filter((t) => t === k).length, k).toBe(1);
      }
      // The request and the acked publish: answered, or rejected with a typed error.
      if ('err' in rep) expect(rep.err.code, 'request').toMatch(/^MB_ERR_/);
      else expect(rep.ok).toBe('r');
      if ('err' in ack) expect(ack.err.code, 'ack').toMatch(/^MB_ERR_/);
      else expect(os.get('o.ack')).toBe(1);
      // Subscriptions: each live one gets each event exactly once; one whose SUB failed ended with the error.
      for (let i = 0; i < 5; i++) {
        obs.publish('d.a', String(i));
        obs.publish('d.b', String(i));
      }
      await obs.flush();
      await c.flush();
      for (const [sub, got] of [
        [subA, da],
        [subB, db],
      ] as const) {
        if (sub.isClosed) {
          expect(sub.error?.message).toMatch(/injected/);
          expect(statuses.some((s) => s.type === 'error' && s.sid === sub.sid)).toBe(true);
          expect(got).toEqual([]);
        } else {
          await until(() => got.length >= 5, `${sub.pattern} deliveries`, 5000);
          await c.flush();
          expect(got).toEqual(['0', '1', '2', '3', '4']);
        }
      }
      // The injected fault was hit (or, for a failed step, reported).
      if ('step' in fault) expect(attachFaults.hook).toBeUndefined();
      else if (fault.transport === 'connect') expect(plan.connect).toBe(false);
      else expect(plan.sends).toBeGreaterThanOrEqual(fault.at);
      expect(clientConns(n2, 1)).toBe(1);
      await c.close();
      await until(() => clientConns(n2, 1) === 0, 'no connection left after close()', 5000);
    });
  }

  it('a status listener that throws on connected does not cost a second connection', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = fx.track(await nodeConnect(url(n), { reconnectBackoff: { base: 20, max: 100 } }));
    await n.close();
    await until(() => !c.isConnected);
    const thrown: unknown[] = [];
    const onErr = (e: unknown) => thrown.push(e);
    process.on('uncaughtException', onErr);
    try {
      c.on('status', (s) => {
        if (s.type === 'connected') throw new Error('listener bug');
      });
      const n2 = await fx.node({ port });
      await nextStatus(c, (s) => s.type === 'connected');
      await c.flush();
      await until(() => thrown.length === 1);
      expect(n2.connectionCount).toBe(1);
      await c.close();
      await until(() => n2.connectionCount === 0);
    } finally {
      process.off('uncaughtException', onErr);
    }
  });
});
