/**
 * maxPending against the largest frame (review of flow control and memory,
 * twenty-first session). The bound stayed 8 MiB whatever --max-payload
 * allowed: a 'drop' subscriber that had not read one 16 MiB event yet sent
 * a PING and was closed MB_ERR_SLOW_CONSUMER (the PONG past the bound),
 * though SPEC 10.6 says a 'drop' subscription never closes the connection;
 * over WebSocket alike. maxPending is at least two of the largest frames by
 * default now (peer links: whatever is configured).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient, sleep } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../src/index.js';

let n: MeshNode | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await n?.close();
});

describe('the default maxPending holds the largest frame', () => {
  it("a 'drop' subscriber that has not read a 16 MiB event yet and sends a PING stays connected", async () => {
    n = await startNode({ port: 0, logger: silentLogger, maxPayload: 16 * 1024 * 1024 });
    expect(n.options.maxPending).toBeGreaterThanOrEqual(2 * 16 * 1024 * 1024);
    const sub = await RawClient.connect(n.port);
    clients.push(sub);
    sub.sub('big', 1, { slow: 'drop' });
    await sub.flush();
    sub.pauseReading();
    const pub = await RawClient.connect(n.port);
    clients.push(pub);
    pub.pub('big', Buffer.alloc(16 * 1024 * 1024, 7));
    await pub.flush(30_000);
    sub.send({ type: FrameType.PING, correlation: 5 });
    await sleep(1000);
    // Before: slowConsumers 1, the subscriber closed (its PONG passed the 8 MiB bound).
    expect({ slow: n.stats.slowConsumers, connections: [...n.connections()].length }).toEqual({ slow: 0, connections: 2 });
  }, 30_000);
});
