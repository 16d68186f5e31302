import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeError, encodeBody } from '@meshbus/proto';
import { Permissions, mintToken, silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { RawClient, type Got } from '@meshbus/testkit';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

/**
 * A `permissions` claim the node does not read as written must refuse the
 * token, never be skipped: a skipped claim is no rule at all, and no rule
 * allows everything. Before, `typeof r === 'object'` let arrays through and
 * unknown keys were ignored, so `publish: ['orders.>']`, `Allow` or NATS's
 * `pub`/`sub` gave a token SUB `>` and PUB anywhere (review F3).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function node(): Promise<MeshNode> {
  // Many refusals from one address in this file: the throttle is not what is tested.
  const n = await startNode({ port: 0, logger: silentLogger, jwt: { hs256Secret: SECRET }, authThrottle: { maxFailures: 1000 } });
  cleanups.push(() => n.close());
  return n;
}

async function connect(n: MeshNode, tok: string): Promise<RawClient> {
  const c = await RawClient.connect(n.port, { token: tok });
  cleanups.push(() => c.close());
  return c;
}

const message = (g: Got): string => decodeError(g.payload).message;

/** Each malformed claim, and words the refusal must contain to say what is wrong. */
const MALFORMED: Array<[string, unknown, string]> = [
  ['sides as lists', { publish: ['orders.>'], subscribe: ['orders.>'] }, 'permissions.publish must be a map, got a list'],
  ['the claim as a list', [['orders.>']], 'permissions must be a map, got a list'],
  ['rules as lists of lists', { publish: [[]], subscribe: [[]] }, 'permissions.publish must be a map'],
  ['a misspelled list key', { publish: { Allow: ['orders.>'] }, subscribe: { Allow: ['orders.>'] } }, 'permissions.publish has an unknown key "Allow"'],
  ['NATS-style side keys', { pub: { allow: ['orders.>'] }, sub: { allow: ['orders.>'] } }, 'permissions has an unknown key "pub"'],
  ['an extra side key beside valid ones', { publish: { allow: ['orders.>'] }, subscribe: { allow: ['orders.>'] }, admin: true }, 'unknown key "admin"'],
  ['a pattern that is not a string', { subscribe: { allow: ['orders.>', 7] } }, 'permissions.subscribe.allow[1] must be a topic pattern (a string), got a number'],
  ['an invalid pattern', { subscribe: { deny: ['orders..secret'] } }, 'permissions.subscribe.deny[0] is not a topic pattern'],
  ['a list as a string', { publish: { allow: 'orders.>' } }, 'permissions.publish.allow must be a list of topic patterns, got a string'],
  ['a null side', { subscribe: null }, 'permissions.subscribe must be a map, got null'],
  ['a null claim', null, 'permissions must be a map, got null'],
];

describe('malformed permissions claims', () => {
  it.each(MALFORMED)('HELLO: %s is refused MB_ERR_AUTH_FAILED, saying what is wrong', async (_name, permissions, words) => {
    const n = await node();
    const c = await connect(n, token({ sub: 'x', exp: inSeconds(60), permissions }));
    const first = c.got[0]!;
    expect(first.error).toBe('MB_ERR_AUTH_FAILED');
    expect(message(first)).toContain(words);
    await c.waitClosed();
  });

  it.each(MALFORMED)('AUTH: %s is refused MB_ERR_AUTH_FAILED and closes, the rules of the old token never dropped', async (_name, permissions, words) => {
    const n = await node();
    const c = await connect(n, token({ sub: 'x', exp: inSeconds(60), permissions: { subscribe: { allow: ['orders.>'] }, publish: { allow: ['orders.>'] } } }));
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    c.send({ type: FrameType.AUTH, correlation: 7, payload: encodeBody({ token: token({ sub: 'x', exp: inSeconds(60), permissions }) }) });
    c.sub('>', 1);
    const refusal = await c.waitFor((g) => g.type === FrameType.ERROR || g.type === FrameType.ACK);
    expect(refusal.error).toBe('MB_ERR_AUTH_FAILED');
    expect(message(refusal)).toContain(words);
    await c.waitClosed();
    expect(c.got.filter((g) => g.type === FrameType.ACK)).toEqual([]);
  });

  it('well-formed claims still apply (absent sides and lists allow, empty lists deny)', async () => {
    const n = await node();
    const c = await connect(n, token({ sub: 'x', exp: inSeconds(60), permissions: { publish: { allow: [] }, subscribe: { allow: ['orders.>'], deny: ['orders.secret.>'] } } }));
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    c.sub('>', 1);
    c.sub('orders.>', 2);
    c.pub('orders.new', 'x', 3);
    await c.flush();
    expect(c.got.filter((g) => g.error).map((g) => `${g.error}@${g.correlation}`)).toEqual(['MB_ERR_PERMISSION_DENIED@1', 'MB_ERR_PERMISSION_DENIED@3']);
  });

  it('Permissions refuses malformed rules whoever built them (not only the verifier)', () => {
    for (const [, permissions, words] of MALFORMED) {
      if (permissions === null) continue;
      expect(() => new Permissions(permissions as never)).toThrow(words);
    }
    expect(new Permissions(undefined).canSubscribe('>')).toBe(true);
  });

  it('mintToken refuses rules nodes would refuse', async () => {
    await expect(mintToken({ sub: 'x', secret: SECRET, subscribe: { Allow: ['a.>'] } as never })).rejects.toThrow(/unknown key "Allow"/);
    await expect(mintToken({ sub: 'x', secret: SECRET, publish: { allow: ['a..b'] } })).rejects.toThrow(/not a topic pattern/);
  });
});
