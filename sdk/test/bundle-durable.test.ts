/**
 * The prebuilt ESM bundle (dist-browser/meshbus.esm.js, internal property
 * names shortened by scripts/build-browser.mjs) with the opt-in durable
 * module loaded beside it, as a page that imports `@meshbus/sdk/durable`
 * from npm or a CDN does: the module calls the engine through DurableHost
 * (connections, the pending table, frames), whose members the bundle must
 * keep under their own names. Runs the bundle in Node over a real
 * WebSocket gateway (the `ws` constructor given as the WebSocket option).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WsGateway } from '@meshbus/core/ws';
import { nodeKit, until } from '@meshbus/testkit';
import { durable } from '../src/durable.js';
import type * as Browser from '../src/browser.js';
import { BUNDLE_DIR, bundle } from './bundles.js';

const fx = nodeKit();

async function loadBundle(): Promise<typeof Browser> {
  bundle('meshbus.esm.js'); // built when missing or stale
  return (await import(pathToFileURL(join(BUNDLE_DIR, 'meshbus.esm.js')).href)) as typeof Browser;
}

describe('prebuilt ESM bundle + @meshbus/sdk/durable', () => {
  it('an acked publish goes out through the bundle and the NACK comes back to it; plain traffic still flows', async () => {
    const mb = await loadBundle();
    const node = await fx.node();
    const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    fx.defer(() => gw.close());
    const c = fx.track(await mb.connect(`ws://127.0.0.1:${gw.port}`, { WebSocket: WebSocket as never, durable, pageLifecycle: false }));

    // The node has no durability: it answers with NACK MB_ERR_NOT_DURABLE (sent by durable.ts on
    // the bundle's connection, matched in the bundle's pending table, settled by durable.ts).
    await expect(c.publish('d.x', 'x', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });

    const got: string[] = [];
    c.subscribe('d.>', { callback: (m) => void got.push(`${m.topic}=${m.string()}`) });
    c.subscribe('svc', { callback: (m) => void m.respond(`re:${m.string()}`) });
    await c.flush();
    c.publish('d.y', 'plain');
    const reply = await c.request('svc', 'ping', { timeout: 5000 });
    expect(reply.string()).toBe('re:ping');
    await until(() => got.length === 1);
    expect(got).toEqual(['d.y=plain']);
  });
});

describe('prebuilt ESM bundle: errors', () => {
  it('keep their class names though the bundle renames classes (err.name was "p", "b"...)', async () => {
    const mb = await loadBundle();
    expect(new mb.ClientError('MB_ERR_TIMEOUT').name).toBe('ClientError');
    expect(new mb.SessionError('MB_ERR_NO_RESPONDERS').name).toBe('SessionError');
    expect(new mb.ProtocolError('MB_ERR_BAD_TOPIC').name).toBe('ProtocolError');
    expect(new mb.StoreError('MB_ERR_NOT_DURABLE').name).toBe('StoreError');
    // What a caller sees when a call is refused: the class's name in the error's first line too.
    const refused = (await mb.connect('ws://127.0.0.1:1', { name: 5 as never, WebSocket: WebSocket as never, pageLifecycle: false }).catch((e: unknown) => e)) as Error;
    expect(refused.name).toBe('ClientError');
    expect(String(refused)).toMatch(/^ClientError: invalid argument/);
  });
});
