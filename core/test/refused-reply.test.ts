import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { connect, type Status } from '@meshbus/sdk';
import { nodeKit, url } from '@meshbus/testkit';
import { startNode } from '../src/index.js';
import { SECRET, inSeconds, token } from './jwt-helpers.js';

/**
 * A reply the node refuses (a responder whose publish rules leave out
 * `_INBOX.>`, an ordinary misconfiguration): its ERROR carried the reply's
 * correlation, which is the requester's request id, not one of the
 * responder's. The responder's SDK took it for the refusal of its own
 * subscription of that number (SPEC 10.3) and ended it while the node kept
 * routing to it. A node now answers a refused reply (a PUB on an `_INBOX.`
 * topic without ACK_REQUESTED) with correlation 0 (SPEC 10.8). Real node,
 * SDK clients and a raw one.
 */
const kit = nodeKit({ start: startNode, defaults: { jwt: { hs256Secret: SECRET } } });

describe('a refused reply', () => {
  it("leaves the responder's subscriptions open: the node's ERROR carries correlation 0, not the requester's id", async () => {
    const n = await kit.node();
    const svcToken = token({ sub: 'svc', exp: inSeconds(120), permissions: { publish: { allow: ['svc.>'] }, subscribe: { allow: ['svc.>', 'a.>'] } } });
    const svc = kit.track(await connect(url(n), { token: svcToken }));
    const statuses: Status[] = [];
    svc.on('status', (s) => statuses.push(s));
    // Sids 1..8: the requester's request ids are as small.
    const plain = Array.from({ length: 8 }, (_, i) => svc.subscribe(`a.${i + 1}`, { callback: () => {} }));
    svc.subscribe('svc.x', { callback: (m) => m.respond('hi') });
    await svc.flush();
    const requester = kit.track(await connect(url(n), { token: token({ sub: 'app', exp: inSeconds(120) }) }));
    for (let i = 0; i < 3; i++) await requester.request('svc.x', 'q', { timeout: 400 }).catch(() => undefined);
    await svc.flush();
    const denied = statuses.filter((s): s is Extract<Status, { type: 'error' }> => s.type === 'error' && s.error.code === 'MB_ERR_PERMISSION_DENIED');
    expect(denied.length).toBeGreaterThanOrEqual(1);
    // Was: a.2, a.3, a.4 ended (sids equal to the request ids), still held by the node.
    expect(plain.map((s) => s.isClosed)).toEqual(plain.map(() => false));
    expect(denied.every((s) => s.sid === undefined)).toBe(true);
  });

  it('is answered with correlation 0 (rate limit, ingress check); a PUB elsewhere keeps its correlation', async () => {
    const n = await kit.node({ jwt: undefined, publishRate: 1, publishBurst: 1 });
    const raw = await kit.raw(n);
    raw.pub('_INBOX.someone.1.tok', 'first', 5); // takes the one token
    raw.pub('_INBOX.someone.2.tok', 'a reply', 7);
    const limited = await raw.waitFor((g) => g.type === FrameType.ERROR);
    expect([limited.error, limited.correlation]).toEqual(['MB_ERR_RATE_LIMITED', 0]);
    const m = await kit.node({ jwt: undefined });
    const r2 = await kit.raw(m);
    // A malformed reply (its topic ends with a dot): refused by the ingress check.
    r2.pub('_INBOX.x.', 'bad', 9);
    const bad = await r2.waitFor((g) => g.type === FrameType.ERROR);
    expect([bad.error, bad.correlation]).toEqual(['MB_ERR_BAD_TOPIC', 0]);
    r2.pub('plain.', 'bad', 11);
    const elsewhere = await r2.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 11);
    expect(elsewhere.error).toBe('MB_ERR_BAD_TOPIC');
  });
});
