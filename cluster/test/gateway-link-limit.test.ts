/**
 * Gateway links other regions' nodes dial in are bounded (maxGatewayLinks)
 * and kept one per remote node id. Before (the twenty-fourth session's
 * review), 150 links from one address were all taken, ~1.4 MB of copied
 * interest each with 10,000 subscriptions, 150 of them with the same id.
 */
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { freePort, until, type RawClient } from '@meshbus/testkit';
import { meshKit, rawPeer } from './mesh-helpers.js';

const SECRET = 'gateway-limit-secret';
const { node } = meshKit();

describe('gateway links in', () => {
  it('past maxGatewayLinks are refused MB_ERR_TOO_MANY_CONNECTIONS; a second link of one node replaces its first', async () => {
    const pu = await freePort();
    const eu = await node({ secret: SECRET, region: 'eu', gateways: { us: [`127.0.0.1:${pu}`] }, maxGatewayLinks: 2 }, 'eu-0');
    const open: RawClient[] = [];
    const dial = async (id: string): Promise<RawClient> => {
      const c = await rawPeer(eu.cluster.port, { id, name: `us-${id}`, cluster: `127.0.0.1:${pu}`, client: '127.0.0.1:1', region: 'us', gateway: true, mesh: 'full' } as never, SECRET);
      open.push(c);
      return c;
    };
    const upIn = (): string[] => eu.cluster.peers().filter((p) => p.gateway !== undefined && p.state === 'up').map((p) => p.id).sort();
    try {
      const a1 = await dial('00000000000000a1');
      await until(() => upIn().length === 1, 'first gateway link');
      await dial('00000000000000a1');
      await until(() => a1.closed, 'the first link of a1 replaced');
      expect(upIn()).toEqual(['00000000000000a1']);
      await dial('00000000000000a2');
      await until(() => upIn().length === 2, 'second node');
      const third = await dial('00000000000000a3');
      const refused = await third.waitFor((g) => g.type === FrameType.ERROR, 5000);
      expect(refused.error).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
      expect(upIn()).toEqual(['00000000000000a1', '00000000000000a2']);
    } finally {
      for (const c of open) c.close();
    }
  });
});
