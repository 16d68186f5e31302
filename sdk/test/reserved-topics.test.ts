import { afterEach, expect, it } from 'vitest';
import { Fixture, until, url } from '@meshbus/testkit';
import { ClientError, connect, type Msg } from '../src/index.js';

/**
 * The SDK against a node that binds inboxes to their connection and keeps
 * trace records private (proto/SPEC.md 11.1): a refused subscription ends
 * with the node's typed error, request/reply keeps working beside a client
 * subscribed to everything, and that client sees none of the replies.
 */
const fx = new Fixture();
afterEach(() => fx.teardown());

it('ends a subscription on another inbox with MB_ERR_PERMISSION_DENIED; replies stay with their requester', async () => {
  const n = await fx.node();
  const svc = fx.track(await connect(url(n)));
  const requester = fx.track(await connect(url(n)));
  const spy = fx.track(await connect(url(n)));
  svc.subscribe('svc.echo', { callback: (m) => void m.respond(m.data) });
  const seen: Msg[] = [];
  spy.subscribe('>', { callback: (m) => void seen.push(m) });
  const inboxes = spy.subscribe('_INBOX.>');
  const theirs = spy.subscribe(`_INBOX.${requester.info!.client}.>`);
  await Promise.all([svc.flush(), spy.flush()]);
  expect((await inboxes.closed)?.code).toBe('MB_ERR_PERMISSION_DENIED');
  expect((await theirs.closed)?.code).toBe('MB_ERR_PERMISSION_DENIED');

  const reply = await requester.request('svc.echo', 'secret', { timeout: 3000 });
  expect(new TextDecoder().decode(reply.data)).toBe('secret');
  spy.publish('end', 'x');
  await until(() => seen.some((m) => m.topic === 'end'));
  expect(seen.map((m) => m.topic)).toEqual(['svc.echo', 'end']);
});

it('refuses a trace id that is not 16 lowercase hex digits before sending it', async () => {
  const n = await fx.node();
  const c = fx.track(await connect(url(n)));
  expect(() => c.publish('a', 'x', { trace: 'orders' })).toThrow(ClientError);
  expect(() => c.publish('a', 'x', { trace: '0123456789abcdef' })).not.toThrow();
});
