import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { WsGateway } from '@meshbus/core/ws';
import { nodeKit, until, url } from '@meshbus/testkit';
import { connect, type Msg } from '../src/index.js';
import { nodeTransports } from '../src/node.js';
import type { Transport, TransportFactory } from '../src/transport.js';

/**
 * The Node transports read frames with the native addon's scanner when it
 * loads (native-scanner.ts): the same events, in order and intact, as with
 * proto's, over TCP and WebSocket, for frames cut anywhere by the socket's
 * reads (16 B to 70 KiB events: many frames per read, frames over several).
 * CI builds the addon (MESHBUS_REQUIRE_NATIVE=1): there it must be used.
 */

const fx = nodeKit();
const nativeBuilt = await import('@meshbus/native').then(
  (m) => m.opsChoice.scan === 'native',
  () => false,
);
const required = process.env['MESHBUS_REQUIRE_NATIVE'] === '1';

/** The Node transports, remembering each one made. */
function recording(made: Transport[]): TransportFactory {
  const f = nodeTransports();
  return (s) => {
    const t = f(s);
    if (t) made.push(t);
    return t;
  };
}

const SIZES = [16, 128, 4096, 70_000, 1, 65_000, 300];

describe.each(['tcp', 'ws'] as const)('over %s', (kind) => {
  it('delivers every event intact with the native scanner', async ({ skip }) => {
    if (!nativeBuilt) {
      if (required) throw new Error('MESHBUS_REQUIRE_NATIVE=1 but @meshbus/native did not load');
      skip('the native addon is not built here: the decoder uses proto\'s scanner');
    }
    const node = await fx.node();
    let server = url(node);
    if (kind === 'ws') {
      const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
      fx.defer(() => gw.close());
      server = `ws://127.0.0.1:${gw.port}`;
    }
    const made: Transport[] = [];
    const sub = fx.track(await connect(server, { transport: recording(made) }));
    const pub = fx.track(await connect(server));
    expect(made[0]!.scanner?.name).toBe('native');
    const got: Msg[] = [];
    sub.subscribe('native.scan', { callback: (m) => got.push(m) });
    await sub.flush();
    const N = 700;
    for (let i = 0; i < N; i++) {
      const size = SIZES[i % SIZES.length]!;
      const p = new Uint8Array(size).fill(i & 0xff);
      p[0] = i >> 8;
      if (size > 1) p[1] = i & 0xff;
      pub.publish('native.scan', p);
    }
    await pub.flush();
    await until(() => got.length === N, `${N} events`);
    got.forEach((m, i) => {
      const size = SIZES[i % SIZES.length]!;
      expect(m.data.length).toBe(size);
      expect(m.data[0]).toBe(i >> 8);
      if (size > 1) expect(m.data[1]).toBe(i & 0xff);
      expect(m.data[size - 1]).toBe(size > 2 ? i & 0xff : m.data[size - 1]);
    });
  });
});

it('MESHBUS_NATIVE=0: the Node transports keep proto\'s scanner', () => {
  const script = `import('${new URL('../dist/native-scanner.js', import.meta.url).href}').then(async (m) => { await m.loadNativeScanner(); console.log(m.nativeScanner()?.name ?? 'none'); })`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, MESHBUS_NATIVE: '0' }, encoding: 'utf8' });
  expect(out.trim()).toBe('none');
  if (nativeBuilt) {
    const on = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, MESHBUS_NATIVE: '1' }, encoding: 'utf8' });
    expect(on.trim()).toBe('native');
  }
});
