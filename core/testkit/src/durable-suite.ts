import { afterAll, afterEach, beforeEach } from 'vitest';
import { connect, type Client, type ConnectOptions } from '@meshbus/sdk';
import type { MeshNode, NodeOptions } from '@meshbus/core';
import { Fixture, type FixtureOptions } from './fixture.js';
import { stopStartedRedis, testRedis, type SkipCtx, type TestRedis } from './redis.js';

/**
 * The fixture of the durability suites: a test Redis (or a skip, see
 * testRedis), and nodes and SDK clients that are closed after each test.
 * Call once at module level (or once in a describe); `start` as in Fixture;
 * `provide`: another deployment than testRedis's (a Redis Cluster, Sentinel).
 */
export function durableSuite(o: Pick<FixtureOptions<MeshNode>, 'start'> & { provide?: (ctx: SkipCtx) => Promise<TestRedis> } = {}): {
  redis(): TestRedis;
  /** A key prefix of its own for one node set, inside the run's prefix. */
  prefix(): string;
  node(opts: NodeOptions): Promise<MeshNode>;
  client(n: MeshNode, opts?: ConnectOptions): Promise<Client>;
} {
  let redis: TestRedis | undefined;
  const fx = new Fixture<MeshNode>(o);
  beforeEach(async ({ skip }) => {
    redis ??= await (o.provide ?? testRedis)({ skip });
  });
  afterEach(() => fx.teardown());
  afterAll(async () => {
    await redis?.cleanup();
    await stopStartedRedis();
  });
  return {
    redis: () => redis!,
    prefix: () => `${redis!.prefix}${Math.random().toString(36).slice(2, 8)}:`,
    node: (opts) => fx.node(opts),
    async client(n, opts = {}) {
      return fx.track(await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 }, ...opts }));
    },
  };
}
