/**
 * A resumed subscription (`since` / `recover`) whose node could not read the
 * history (SPEC 15.3, "A store that fails a read is no loss"), against a
 * fake node so the client's side is pinned down alone: the ERROR
 * MB_ERR_STORE_UNAVAILABLE on the sid keeps the subscription and its
 * position and makes one SUB again a second later; an ACK with epoch ''
 * (what older nodes sent for a failed read) is never taken as a position.
 * Before: the ERROR was only reported (the subscription waited for ever if
 * the node had refused it), and the epoch '' "position" made the next
 * resume ask "from now", then report recovered = true over a gap.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import { FrameType, decodeSub, encodeBody, encodeFrame, errorFrame, type Frame, type SubBody } from '@meshbus/proto';
import { cleanups, until } from '@meshbus/testkit';
import { connect, type Client, type Status } from '../src/index.js';
import { fakeTcpNode, fakeWelcome } from './helpers.js';

const cleanup = cleanups();

/** A fake node: answers HELLO with WELCOME, records each SUB (with when it came), and lets `onSub` answer it. */
async function fakeNode(onSub: (s: net.Socket, sid: number, body: SubBody, n: number) => void): Promise<{ port: number; subs: Array<{ sid: number; body: SubBody; at: number }>; sockets: Set<net.Socket> }> {
  const subs: Array<{ sid: number; body: SubBody; at: number }> = [];
  const node = await fakeTcpNode((s, f: Frame) => {
    if (f.type === FrameType.HELLO) s.write(fakeWelcome());
    if (f.type !== FrameType.SUB) return;
    const body = f.payloadLen > 0 ? decodeSub(f.payload) : {};
    subs.push({ sid: f.correlation, body, at: Date.now() });
    onSub(s, f.correlation, body, subs.length);
  });
  cleanup.push(() => node.stop());
  return { port: node.port, subs, sockets: node.sockets };
}

async function client(port: number, statuses: Status[]): Promise<Client> {
  const c = await connect(`127.0.0.1:${port}`, { reconnectBackoff: { base: 20, max: 50 } });
  cleanup.push(() => c.close().catch(() => {}));
  c.on('status', (s) => void statuses.push(s));
  return c;
}

const subAck = (sid: number, body: { recovered: boolean; epoch: string; offset: number }): Uint8Array => encodeFrame({ type: FrameType.ACK, correlation: sid, payload: encodeBody(body) });
const SINCE = { epoch: 'e1', offset: 3 };

it('ERROR MB_ERR_STORE_UNAVAILABLE on a resumed sid: reported with the sid, the subscription and its position kept, the SUB sent again once, a second later', async () => {
  const node = await fakeNode((s, sid, _body, n) => {
    // The first SUB: an ERROR storm (three at once); the second: the resume succeeds.
    if (n === 1) for (let i = 0; i < 3; i++) s.write(errorFrame('MB_ERR_STORE_UNAVAILABLE', sid, 'history not read'));
    else s.write(subAck(sid, { recovered: true, epoch: 'e1', offset: 3 }));
  });
  const statuses: Status[] = [];
  const c = await client(node.port, statuses);
  const sub = c.subscribe('h.t', { since: SINCE, callback: () => undefined });
  await until(() => node.subs.length >= 2, 'the SUB sent again', 5_000);
  await until(() => sub.recovered === true, 'the resume answered', 5_000);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(node.subs.length).toBe(2); // one timer per subscription, however many ERRORs
  expect(node.subs[1]!.at - node.subs[0]!.at).toBeGreaterThanOrEqual(900);
  expect(node.subs.map((x) => x.body.since)).toEqual([['e1', 3], ['e1', 3]]);
  expect(node.subs.every((x) => x.sid === sub.sid)).toBe(true);
  const errors = statuses.flatMap((s) => (s.type === 'error' ? [{ code: s.error.code, sid: s.sid }] : []));
  expect(errors.length).toBeGreaterThanOrEqual(1);
  expect(errors.every((e) => e.code === 'MB_ERR_STORE_UNAVAILABLE' && e.sid === sub.sid)).toBe(true);
  expect(sub.isClosed).toBe(false);
  expect(sub.position).toEqual(SINCE);
});

it("an ACK with epoch '' (an older node's answer to a failed read) is no position: the next resume asks from the last real one", async () => {
  const node = await fakeNode((s, sid, _body, n) => {
    if (n === 1) {
      s.write(subAck(sid, { recovered: false, epoch: '', offset: 0 }));
      // Then the connection drops: the client resumes on the next one.
      setTimeout(() => s.destroy(), 50);
    } else s.write(subAck(sid, { recovered: true, epoch: 'e1', offset: 3 }));
  });
  const statuses: Status[] = [];
  const c = await client(node.port, statuses);
  const sub = c.subscribe('h.t', { since: SINCE, callback: () => undefined });
  await until(() => node.subs.length >= 2, 'the resume after the reconnect', 5_000);
  expect(node.subs[1]!.body.since).toEqual(['e1', 3]);
  await until(() => sub.recovered === true, 'the resume answered', 5_000);
  expect(statuses.filter((s) => s.type === 'recovery').map((s) => (s.type === 'recovery' ? s.recovered : undefined))).toEqual([true]);
  expect(sub.position).toEqual(SINCE);
});

it('a plain subscription told MB_ERR_STORE_UNAVAILABLE (latest values not read) is not subscribed again: reported with its sid, kept', async () => {
  const node = await fakeNode((s, sid) => s.write(errorFrame('MB_ERR_STORE_UNAVAILABLE', sid, 'latest values not sent')));
  const statuses: Status[] = [];
  const c = await client(node.port, statuses);
  const sub = c.subscribe('px.>', { callback: () => undefined });
  await until(() => statuses.some((s) => s.type === 'error'), 'the error reported', 5_000);
  await new Promise((r) => setTimeout(r, 1_300));
  expect(node.subs.length).toBe(1);
  expect(statuses.flatMap((s) => (s.type === 'error' ? [[s.error.code, s.sid]] : []))).toEqual([['MB_ERR_STORE_UNAVAILABLE', sub.sid]]);
  expect(sub.isClosed).toBe(false);
});
