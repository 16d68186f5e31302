import { afterEach, describe, expect, it } from 'vitest';
import { Flags, FrameType, OFF, encodeBody, encodeFrame, resealHeader, topicHash, writeU32, type FrameSpec } from '@meshbus/proto';
import { RawClient, type RawFrames, RawWs } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { startHttp } from '../../src/http/index.js';
import { sameSecret } from '../../src/auth/same-secret.js';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

/**
 * Hostile clients against a real node, over TCP and WebSocket (the same
 * ClientSession serves both): inbox and trace topics are private, AUTH
 * refresh cannot widen or switch identity, unauthenticated peers cannot make
 * the node decode big frames, and every number a client sends is bounded.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

type Hello = Record<string, unknown> | false;
interface Bed {
  n: MeshNode;
  connect(hello?: Hello): Promise<RawFrames>;
}

async function bed(transport: 'tcp' | 'ws', opts: Parameters<typeof startNode>[0] = {}): Promise<Bed> {
  const n = await startNode({ port: 0, logger: silentLogger, ...opts });
  cleanups.push(() => n.close());
  let g: WsGateway | undefined;
  if (transport === 'ws') {
    g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    cleanups.push(() => g!.close());
  }
  return {
    n,
    async connect(hello: Hello = {}) {
      if (g) {
        const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello });
        cleanups.push(() => c.ws.terminate());
        return c;
      }
      const c = await RawClient.connect(n.port, hello);
      cleanups.push(() => c.close());
      return c;
    },
  };
}

const errorsOf = (c: RawFrames): Array<[string | undefined, number]> =>
  c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation]);

/** A REQ with reply topic `reply`. */
const req = (topic: string, reply: string, correlation: number): FrameSpec => ({ type: FrameType.REQ, topic, correlation, ext: { reply }, payload: Buffer.from('q') });

describe.each(['tcp', 'ws'] as const)('reserved topics over %s', (transport) => {
  it('refuses SUBs on other clients\' inboxes and any inbox wildcard, accepts its own inbox', async () => {
    const b = await bed(transport);
    const c = await b.connect();
    const own = c.clientId;
    const patterns = ['_INBOX.>', '_INBOX.*.>', '_INBOX.*', '_INBOX.0123456789abcdef.>', '_INBOX', `_INBOX.*.${own}`];
    patterns.forEach((p, i) => c.sub(p, i + 1));
    c.sub(`_INBOX.${own}.>`, 100);
    c.sub(`_INBOX.${own}.7`, 101);
    await c.flush();
    expect(errorsOf(c)).toEqual(patterns.map((_, i) => ['MB_ERR_PERMISSION_DENIED', i + 1]));
    expect(c.closed).toBe(false);
    expect([...b.n.connections()][0]!.subscriptionCount).toBe(2);
  });

  it('a client subscribed to ">", "*.>" or "*.*.*" never receives another client\'s replies, its own yes', async () => {
    const b = await bed(transport);
    const svc = await b.connect();
    svc.sub('svc.echo', 1);
    const requester = await b.connect();
    const inbox = `_INBOX.${requester.clientId}`;
    requester.sub(`${inbox}.>`, 1);
    const spies = [await b.connect(), await b.connect(), await b.connect()];
    ['>', '*.>', '*.*.*'].forEach((p, i) => spies[i]!.sub(p, 1));
    const spyInbox = `_INBOX.${spies[0]!.clientId}`;
    spies[0]!.sub(`${spyInbox}.>`, 2);
    for (const c of [svc, requester, ...spies]) await c.flush();

    requester.send(req('svc.echo', `${inbox}.1`, 41));
    const r = await svc.waitFor((g) => g.type === FrameType.REQ);
    // Anyone may publish a reply into someone's inbox (that is how replies work).
    svc.pub(`${inbox}.1`, 'secret reply', r.correlation);
    svc.pub(`${spyInbox}.1`, 'for the spy');
    svc.pub('plain.x.y', 'public');
    await requester.waitFor((g) => g.topic === `${inbox}.1`);
    for (const s of spies) await s.waitFor((g) => g.topic === 'plain.x.y');
    await svc.flush();
    for (const s of spies) await s.flush();
    expect(spies[0]!.events().map((g) => g.topic)).toEqual(['svc.echo', `${spyInbox}.1`, 'plain.x.y']);
    expect(spies[1]!.events().map((g) => g.topic)).toEqual(['svc.echo', 'plain.x.y']);
    expect(spies[2]!.events().map((g) => g.topic)).toEqual(['plain.x.y']);
  });

  it('keeps inboxes private for a JWT client allowed "_INBOX.>" and ">" (the old README recommendation)', async () => {
    const b = await bed(transport, { jwt: { hs256Secret: SECRET } });
    const allowAll = token({ sub: 'app', exp: inSeconds(600), permissions: { subscribe: { allow: ['_INBOX.>', '>'] } } });
    const victim = await b.connect({ token: allowAll });
    const spy = await b.connect({ token: allowAll });
    victim.sub(`_INBOX.${victim.clientId}.>`, 1);
    spy.sub('_INBOX.>', 1);
    spy.sub(`_INBOX.${victim.clientId}.>`, 2);
    spy.sub('>', 3);
    await victim.flush();
    await spy.flush();
    expect(errorsOf(spy)).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 1],
      ['MB_ERR_PERMISSION_DENIED', 2],
    ]);
    spy.pub(`_INBOX.${victim.clientId}.5`, 'a reply');
    spy.pub('after', 'x');
    await victim.waitFor((g) => g.topic === `_INBOX.${victim.clientId}.5`);
    await spy.waitFor((g) => g.topic === 'after');
    expect(spy.events().map((g) => g.topic)).toEqual(['after']);
  });

  it('trace records go only to the tracer: wide _TRACE SUBs refused, ">" filtered, client-chosen ids refused', async () => {
    const b = await bed(transport);
    const tracer = await b.connect();
    const spy = await b.connect();
    const sink = await b.connect();
    sink.sub('orders.*', 1);
    spy.sub('_TRACE.>', 1);
    spy.sub('_TRACE.*', 2);
    spy.sub('_TRACE.orders', 3);
    spy.sub('>', 4);
    const id = '0123456789abcdef';
    tracer.sub(`_TRACE.${id}`, 1);
    for (const c of [sink, spy, tracer]) await c.flush();
    expect(errorsOf(spy)).toEqual([1, 2, 3].map((sid) => ['MB_ERR_PERMISSION_DENIED', sid]));

    tracer.send({ type: FrameType.PUB, topic: 'orders.new', flags: Flags.TRACE, ext: { trace: id }, payload: Buffer.from('t') });
    const hop = await tracer.waitFor((g) => g.topic === `_TRACE.${id}`);
    expect(hop.payload.length).toBeGreaterThan(0);
    // A trace id the client picks to aim the node's records at a topic of its choosing.
    tracer.send({ type: FrameType.PUB, topic: 'orders.new', correlation: 7, flags: Flags.TRACE, ext: { trace: 'orders' }, payload: Buffer.from('t') });
    tracer.send({ type: FrameType.PUB, topic: 'orders.new', correlation: 8, flags: Flags.TRACE, payload: Buffer.from('t') });
    await tracer.flush();
    expect(errorsOf(tracer)).toEqual([
      ['MB_ERR_BAD_EXTENSION', 7],
      ['MB_ERR_BAD_EXTENSION', 8],
    ]);
    // Forged hop records: straight, or through a responder's reply.
    spy.pub(`_TRACE.${id}`, 'fake hop', 20);
    spy.send(req('orders.new', `_TRACE.${id}`, 21));
    spy.pub('end', 'x');
    await spy.waitFor((g) => g.topic === 'end');
    expect(errorsOf(spy).slice(3)).toEqual([20, 21].map((k) => ['MB_ERR_PERMISSION_DENIED', k]));
    expect(tracer.events().filter((g) => g.topic === `_TRACE.${id}`).length).toBe(1);
    expect(spy.events().map((g) => g.topic)).toEqual(['orders.new', 'end']);
    expect(sink.events().map((g) => g.topic)).toEqual(['orders.new']);
  });

  it('refuses reply topics that are not literal topics, with or without tokens', async () => {
    const b = await bed(transport);
    const svc = await b.connect();
    svc.sub('svc.x', 1);
    await svc.flush();
    const c = await b.connect();
    const bad = ['_INBOX.*', 'a.>', 'a..b', 'x y', 'r.'.repeat(200) + 'r'];
    bad.forEach((r, i) => c.send(req('svc.x', r, i + 1)));
    await c.flush();
    await svc.flush();
    expect(errorsOf(c)).toEqual(bad.map((_, i) => ['MB_ERR_BAD_TOPIC', i + 1]));
    expect(svc.events()).toEqual([]);
  });

  it('bounds every number in a client event header and extension with MB_ERR_OUT_OF_RANGE', async () => {
    const b = await bed(transport);
    const sub = await b.connect();
    sub.sub('n', 1);
    await sub.flush();
    const c = await b.connect();
    const base = { type: FrameType.PUB, topic: 'n', payload: Buffer.from('x') } as const;
    c.send(
      { ...base, correlation: 1, hops: 3 },
      { ...base, correlation: 2, maxHops: 200 },
      { ...base, correlation: 3, timestamp: Date.now() + 3600_000 },
      { ...base, correlation: 4, ext: { delay: 365 * 24 * 3600_000 } },
      { ...base, correlation: 5, maxHops: 16, timestamp: Date.now() - 1000 },
    );
    c.send({ type: FrameType.NACK, correlation: 8, payload: encodeBody({ code: 1, message: 'r'.repeat(5000) }) });
    c.sub('q', 6, { since: ['e', 1e300] });
    c.sub('q', 7, { since: ['e'.repeat(65), 1] });
    await c.flush();
    expect(errorsOf(c)).toEqual([1, 2, 3, 4, 8, 6, 7].map((k) => ['MB_ERR_OUT_OF_RANGE', k]));
    await sub.waitFor((g) => g.correlation === 5);
    expect(sub.events().map((g) => g.correlation)).toEqual([5]);
    expect(c.closed).toBe(false);
  });

  it('refuses an oversized first frame before decoding it, and big HELLO bodies, and closes', async () => {
    const b = await bed(transport);
    const hugeHello = { type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], name: 'x'.repeat(2 * 1024 * 1024 - 100) }) };
    const huge = await b.connect(false);
    huge.send(hugeHello);
    await huge.waitClosed();
    if (huge instanceof RawWs) {
      // WebSocket: the message is refused while it arrives, before ws has buffered it (ws-pre-auth.test.ts).
      expect(huge.closeCode).toBe(1009);
    } else {
      expect(huge.got.map((g) => g.error)).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
    }
    // A big frame in a message that fits (WebSocket) is refused by the decoder like over TCP.
    const big = await b.connect({ name: 'y'.repeat(20_000) });
    expect(big.got.map((g) => g.error)).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
    await big.waitClosed();
    const keys = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
    const many = await b.connect(keys);
    expect(many.got.map((g) => g.error)).toEqual(['MB_ERR_OUT_OF_RANGE']);
    await many.waitClosed();
    const longName = await b.connect({ name: 'n'.repeat(1000) });
    expect(longName.got.map((g) => g.error)).toEqual(['MB_ERR_OUT_OF_RANGE']);
    // After WELCOME the full frame size applies, even for a frame in the same chunk as the HELLO.
    const payload = Buffer.alloc(60 * 1024, 1);
    const piped = await b.connect(false);
    piped.send(
      { type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) },
      { type: FrameType.SUB, topic: 'big', correlation: 1 },
      { type: FrameType.PUB, topic: 'big', payload },
    );
    const e = await piped.waitFor((g) => g.topic === 'big');
    expect(e.payload.length).toBe(payload.length);
    // And after WELCOME a WebSocket message may again be as big as the gateway allows.
    const large = Buffer.alloc(512 * 1024, 2);
    piped.pub('big', large);
    expect((await piped.waitFor((g) => g.topic === 'big' && g.payload.length === large.length)).payload.equals(large)).toBe(true);
  });
});

describe('the HTTP API inbox', () => {
  it('keeps answering POST /v1/request while a ">" client cannot read or subscribe to its replies', async () => {
    const b = await bed('tcp');
    const http = await startHttp(b.n, { port: 0, host: '127.0.0.1' });
    cleanups.push(() => http.close());
    const svc = await b.connect();
    svc.sub('svc.echo', 1);
    const spy = await b.connect();
    spy.sub('>', 1);
    spy.sub(`_INBOX.${b.n.id}.http.>`, 2);
    await svc.flush();
    await spy.flush();
    expect(errorsOf(spy)).toEqual([['MB_ERR_PERMISSION_DENIED', 2]]);
    const pending = fetch(`${http.url}/v1/request/svc.echo?timeout=3000`, { method: 'POST', body: 'ping', headers: { 'content-type': 'application/octet-stream' } });
    const r = await svc.waitFor((g) => g.type === FrameType.REQ);
    const reply = r.reply!;
    expect(reply.startsWith(`_INBOX.${b.n.id}.http.`)).toBe(true);
    svc.pub(reply, 'pong', r.correlation);
    const res = await pending;
    expect(await res.text()).toBe('pong');
    spy.pub('end', 'x');
    await spy.waitFor((g) => g.topic === 'end');
    expect(spy.events().map((g) => g.topic)).toEqual(['svc.echo', 'end']);
  });
});

describe('pre-auth frame bound', () => {
  it('is configurable (maxHelloSize) and bounds the token length', async () => {
    const b = await bed('tcp', { maxHelloSize: 300, token: 's3cret' });
    const over = await b.connect({ token: 's3cret', name: 'n'.repeat(300) });
    expect(over.got.map((g) => g.error)).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
    const fine = await b.connect({ token: 's3cret' });
    expect(fine.got[0]!.type).toBe(FrameType.WELCOME);
    const bad = await b.connect({ token: 's3cre' });
    expect(bad.got[0]!.error).toBe('MB_ERR_AUTH_FAILED');
    const j = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const long = await j.connect({ token: 'x'.repeat(7000) });
    expect(long.got[0]!.error).toBe('MB_ERR_OUT_OF_RANGE');
  });

  it('compares static tokens whatever their lengths', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abd', 'abc')).toBe(false);
    expect(sameSecret('abcd', 'abc')).toBe(false);
    expect(sameSecret(undefined, 'abc')).toBe(false);
  });
});

describe('JWT permissions', () => {
  it('lets a client subscribe to its own inbox under any allow list, unless a deny covers it', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const narrow = await b.connect({ token: token({ sub: 'a', exp: inSeconds(600), permissions: { subscribe: { allow: ['orders.>'] } } }) });
    const denied = await b.connect({ token: token({ sub: 'b', exp: inSeconds(600), permissions: { subscribe: { deny: ['_INBOX.>'] } } }) });
    narrow.sub(`_INBOX.${narrow.clientId}.>`, 1);
    narrow.sub('payments.>', 2);
    denied.sub(`_INBOX.${denied.clientId}.>`, 1);
    await narrow.flush();
    await denied.flush();
    expect(errorsOf(narrow)).toEqual([['MB_ERR_PERMISSION_DENIED', 2]]);
    expect(errorsOf(denied)).toEqual([['MB_ERR_PERMISSION_DENIED', 1]]);
  });

  it('checks reply topics against publish permissions', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const svc = await b.connect({ token: token({ sub: 'svc', exp: inSeconds(600) }) });
    svc.sub('orders.*', 1);
    await svc.flush();
    const c = await b.connect({ token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['orders.>'] } } }) });
    const other = await b.connect({ token: token({ sub: 'x', exp: inSeconds(600) }) });
    c.send(req('orders.get', 'admin.cmd.shutdown', 1));
    c.send(req('orders.get', `_INBOX.${other.clientId}.1`, 2));
    // Its own inbox is always a valid reply topic, without a publish rule for it.
    c.send(req('orders.get', `_INBOX.${c.clientId}.1`, 3));
    c.send(req('orders.get', 'orders.replies', 4));
    await c.flush();
    await svc.waitFor((g) => g.correlation === 4);
    expect(errorsOf(c)).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 1],
      ['MB_ERR_PERMISSION_DENIED', 2],
    ]);
    expect(svc.events().map((g) => g.correlation)).toEqual([3, 4]);
  });

  it('remembered publish decisions hold per topic bytes: repeats, a forged topic hash, and a refreshed token', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const svc = await b.connect({ token: token({ sub: 'svc', exp: inSeconds(600) }) });
    svc.sub('orders.>', 1);
    await svc.flush();
    const perms = { publish: { allow: ['orders.>'], deny: ['orders.secret.>'] } };
    const c = (await b.connect({ token: token({ sub: 'app', exp: inSeconds(600), permissions: perms }) })) as RawClient;
    for (let i = 1; i <= 3; i++) c.pub('orders.eu', 'ok', i);
    for (let i = 4; i <= 6; i++) c.pub('orders.secret.x', 'no', i);
    // A denied topic sent with the header hash of the allowed one (its decision is remembered under that hash).
    const forged = encodeFrame({ type: FrameType.PUB, topic: 'orders.secret.x', correlation: 7, payload: Buffer.from('no') });
    writeU32(forged, OFF.TOPIC_HASH, topicHash(Buffer.from('orders.eu')));
    resealHeader(forged, 0);
    c.socket.write(forged);
    c.pub('orders.eu', 'ok', 8);
    await c.flush();
    await svc.waitFor((g) => g.correlation === 8);
    expect(errorsOf(c)).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 4],
      ['MB_ERR_PERMISSION_DENIED', 5],
      ['MB_ERR_PERMISSION_DENIED', 6],
      ['MB_ERR_PERMISSION_DENIED', 7],
    ]);
    expect(svc.events().map((g) => g.correlation)).toEqual([1, 2, 3, 8]);
    // A refreshed token with narrower rules: the topic allowed (and remembered) before is refused now.
    c.send({ type: FrameType.AUTH, correlation: 9, payload: encodeBody({ token: token({ sub: 'app', exp: inSeconds(600), permissions: { publish: { allow: ['orders.us'] } } }) }) });
    await c.waitFor((g) => g.type === FrameType.ACK && g.correlation === 9);
    c.pub('orders.eu', 'now refused', 10);
    await c.flush();
    expect(errorsOf(c).at(-1)).toEqual(['MB_ERR_PERMISSION_DENIED', 10]);
  });

  it('remembered delivery decisions hold per topic bytes (deny filtering at delivery)', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const pub = await b.connect({ token: token({ sub: 'pub', exp: inSeconds(600) }) });
    const c = await b.connect({ token: token({ sub: 'bob', exp: inSeconds(600), permissions: { subscribe: { allow: ['orders.>'], deny: ['orders.secret.>'] } } }) });
    c.sub('orders.>', 1);
    await c.flush();
    for (let i = 0; i < 3; i++) {
      pub.pub('orders.eu', `eu${i}`);
      pub.pub('orders.secret.x', `s${i}`);
    }
    pub.pub('orders.end', 'end');
    await c.waitFor((g) => g.topic === 'orders.end');
    expect(c.events().map((g) => g.payload.toString())).toEqual(['eu0', 'eu1', 'eu2', 'end']);
  });

  it('lets a token opt in to wide _TRACE subscriptions by naming them', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const ops = await b.connect({ token: token({ sub: 'ops', exp: inSeconds(600), permissions: { subscribe: { allow: ['_TRACE.>', 'orders.>'] } } }) });
    ops.sub('_TRACE.>', 1);
    const tracer = await b.connect({ token: token({ sub: 'app', exp: inSeconds(600) }) });
    await ops.flush();
    tracer.send({ type: FrameType.PUB, topic: 'orders.x', flags: Flags.TRACE, ext: { trace: 'fedcba9876543210' } });
    await ops.waitFor((g) => g.topic === '_TRACE.fedcba9876543210');
    expect(errorsOf(ops)).toEqual([]);
  });
});

describe('AUTH refresh', () => {
  it('refuses a token for another subject and keeps the connection on its own', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const c = await b.connect({ token: token({ sub: 'alice', exp: inSeconds(600), permissions: { publish: { allow: ['alice.>'] } } }) });
    c.send({ type: FrameType.AUTH, correlation: 5, payload: encodeBody({ token: token({ sub: 'root', exp: inSeconds(600) }) }) });
    await c.flush();
    expect(errorsOf(c)).toEqual([['MB_ERR_SUBJECT_CHANGED', 5]]);
    expect([...b.n.connections()][0]!.subject).toBe('alice');
    c.pub('admin.x', 'no', 6);
    await c.flush();
    expect(errorsOf(c)[1]).toEqual(['MB_ERR_PERMISSION_DENIED', 6]);
    expect(c.closed).toBe(false);
  });

  it('ends the live subscriptions the new token no longer allows, on their sid', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const pub = await b.connect({ token: token({ sub: 'pub', exp: inSeconds(600) }) });
    const c = await b.connect({ token: token({ sub: 'bob', exp: inSeconds(600), permissions: { subscribe: { allow: ['orders.>', 'audit.*'] } } }) });
    c.sub('orders.>', 1);
    c.sub('audit.*', 2);
    await c.flush();
    c.send({ type: FrameType.AUTH, correlation: 9, payload: encodeBody({ token: token({ sub: 'bob', exp: inSeconds(600), permissions: { subscribe: { allow: ['audit.*'] } } }) }) });
    await c.waitFor((g) => g.type === FrameType.ACK && g.correlation === 9);
    expect(errorsOf(c)).toEqual([['MB_ERR_PERMISSION_DENIED', 1]]);
    pub.pub('orders.eu', 'gone');
    pub.pub('audit.x', 'kept');
    await c.waitFor((g) => g.topic === 'audit.x');
    await pub.flush();
    await c.flush();
    expect(c.events().map((g) => g.topic)).toEqual(['audit.x']);
    expect([...b.n.connections()].find((s) => s.subject === 'bob')!.subscriptionCount).toBe(1);
  });
});

describe('token lifetime', () => {
  it('maxTokenLifetime refuses tokens without exp or iat, tokens issued too long ago, and ends sessions at the cap', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET }, maxTokenLifetime: 1 });
    const forever = await b.connect({ token: token({ sub: 'old' }) });
    expect(forever.got[0]!.error).toBe('MB_ERR_AUTH_FAILED');
    const stale = await b.connect({ token: token({ sub: 'old', iat: inSeconds(-3600) }) });
    expect(stale.got[0]!.error).toBe('MB_ERR_TOKEN_EXPIRED');
    const capped = await b.connect({ token: token({ sub: 'far', exp: inSeconds(3600) }) });
    expect(capped.got[0]!.type).toBe(FrameType.WELCOME);
    const e = await capped.waitFor((g) => g.type === FrameType.ERROR, 5000);
    expect(e.error).toBe('MB_ERR_TOKEN_EXPIRED');
    await capped.waitClosed();
  });

  it('without maxTokenLifetime a token without exp stays valid (default)', async () => {
    const b = await bed('tcp', { jwt: { hs256Secret: SECRET } });
    const c = await b.connect({ token: token({ sub: 'svc' }) });
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
  });
});

it('a connection\'s own inbox is `_INBOX.<its id>` and below, never a longer id that starts like its own', async () => {
  const { isOwnInbox } = await import('../../src/auth/reserved-topics.js');
  const cases: Array<[string, boolean]> = [
    ['_INBOX.abc', true],
    ['_INBOX.abc.1.tok', true],
    ['_INBOX.abc.>', true],
    ['_INBOX.abcd.1', false],
    ['_INBOX.ab', false],
    ['_INBOX.ab.c', false],
    ['_INBOX.xabc.1', false],
    ['_INBOXabc.1', false],
    ['_INBOX..abc', false],
    ['orders._INBOX.abc', false],
  ];
  for (const [pattern, own] of cases) expect(isOwnInbox(pattern, 'abc'), pattern).toBe(own);
});
