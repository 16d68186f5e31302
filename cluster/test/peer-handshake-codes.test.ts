/**
 * A frame other than the handshake's before a peer link is authenticated is
 * refused MB_ERR_HANDSHAKE_REQUIRED whatever its body: only the handshake's
 * frames are decoded (SPEC 7). Before (the twenty-fourth session's review),
 * a PUB, INTEREST or SUB got MB_ERR_HANDSHAKE_REQUIRED with an empty or map
 * body and MB_ERR_BAD_BODY with text or an array.
 */
import { expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { RawClient } from '@meshbus/testkit';
import { newNonce } from '../src/peer-auth.js';
import { meshKit } from './mesh-helpers.js';

const { node } = meshKit();

it('before authentication, a PUB, INTEREST or SUB is refused MB_ERR_HANDSHAKE_REQUIRED whatever its body', async () => {
  const t = await node({ secret: 'handshake-codes-secret' }, 'a');
  const bodies = [new Uint8Array(), encodeBody({ a: 1 }), Buffer.from('hello'), Buffer.from([0x91, 0x01])];
  const codes = new Set<string>();
  for (const withHello of [false, true]) {
    for (const type of [FrameType.PUB, FrameType.INTEREST, FrameType.SUB]) {
      for (const payload of bodies) {
        const hello = withHello ? { peer: { id: newNonce().slice(0, 16), name: 'x', cluster: '127.0.0.1:1', client: '127.0.0.1:1' }, nonce: newNonce() } : false;
        const c = await RawClient.connect(t.cluster.port, hello);
        c.send({ type, topic: type === FrameType.INTEREST ? undefined : 'x', payload });
        await c.waitClosed(3000);
        for (const g of c.got) if (g.type === FrameType.ERROR) codes.add(g.error!);
        c.close();
      }
    }
  }
  expect([...codes]).toEqual(['MB_ERR_HANDSHAKE_REQUIRED']);
});
