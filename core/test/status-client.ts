import { connect, type Client, type Status } from '@meshbus/sdk';
import type { Fixture } from '@meshbus/testkit';
import type { MeshNode } from '../src/index.js';

/**
 * An SDK client of `n` that reconnects fast (backoff 20..100 ms), closed by
 * the kit after the test; `statuses`, when given, collects what its
 * `status()` iterator yields (the durable outage tests read the errors a
 * subscription reports there).
 */
export async function statusClient(kit: Fixture<MeshNode>, n: MeshNode, statuses?: Status[]): Promise<Client> {
  const c = kit.track(await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 } }));
  if (statuses) {
    void (async () => {
      for await (const s of c.status()) statuses.push(s);
    })().catch(() => undefined);
  }
  return c;
}
