import { expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { nodeKit } from '@meshbus/testkit';
import { startNode } from '../../src/index.js';
import { EventTap, nodeWithHttp } from '../http-helpers.js';

/**
 * An HTTP event header no event can carry (`x-meshbus-h-__proto__`: msgpack
 * decoders rename `__proto__`, and the SDK refuses the name). Before, the
 * API assigned it to a plain object, which dropped it without a word: the
 * publish answered 200 and the event went out without the header.
 */
const kit = nodeKit({ start: startNode });

it('POST /v1/publish and /v1/request refuse a __proto__ event header with 400, publishing nothing', async () => {
  const { node, http } = await nodeWithHttp(kit);
  const sub = await kit.raw(node);
  const tap = new EventTap(sub);
  sub.sub('h.>', 1);
  await sub.flush();
  for (const route of ['/v1/publish/h.a', '/v1/request/h.a?timeout=50']) {
    const r = await fetch(`${http.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-meshbus-h-__proto__': 'p', 'x-meshbus-h-ok': '1' }, body: 'x' });
    expect([route, r.status]).toEqual([route, 400]);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('MB_ERR_INVALID_ARGUMENT');
  }
  const ok = await fetch(`${http.url}/v1/publish/h.b`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-meshbus-h-constructor': 'c' }, body: 'x' });
  expect(ok.status).toBe(200);
  const e = await tap.waitFor((g) => g.type === FrameType.PUB && g.topic === 'h.b');
  expect(e.ext?.headers).toEqual({ constructor: 'c' });
  expect(tap.events.filter((g) => g.topic === 'h.a')).toEqual([]);
});
