import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { FrameDecoder, FrameType, codeFromNumber, decodeError, encodeBody, encodeFrame, type ErrorCode } from '@meshbus/proto';
import { until } from '@meshbus/testkit';
import { startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * A connection to the cluster port that has not passed the cluster-secret
 * challenge gets the same treatment as an unauthenticated client: a frame
 * over the small handshake bound is refused and the link closed before its
 * body is buffered or decoded.
 */
const nodes: TestNode[] = [];
afterEach(async () => {
  for (const t of nodes.splice(0)) await stopMeshNode(t);
});

it('refuses a big frame before the peer handshake with MB_ERR_FRAME_TOO_LARGE and closes', async () => {
  const t = await startMeshNode();
  nodes.push(t);
  const errors: ErrorCode[] = [];
  let closed = false;
  const s = net.connect(t.cluster.port, '127.0.0.1');
  const d = new FrameDecoder();
  s.on('data', (c) => d.push(c, (f) => void (f.type === FrameType.ERROR && errors.push(codeFromNumber(decodeError(f.payload).code))), () => {}));
  s.on('close', () => (closed = true));
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  const junk = Array.from({ length: 500_000 }, (_, i) => [i & 0x7f]);
  s.write(encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], peer: { junk }, nonce: 'n' }) }));
  await until(() => closed, 'the link to close');
  expect(errors).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
});
