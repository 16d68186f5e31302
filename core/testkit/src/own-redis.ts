import { afterEach } from 'vitest';
import { requireRedisServer, startRedisServer, type RedisServer, type SkipCtx } from './redis.js';

/**
 * Redis servers a test file starts for itself, to pause, kill or fill them
 * (never the shared one): each is stopped after its test, resumed first if
 * it was paused. `start(ctx)` skips the test when redis-server is not
 * installed, or throws under MESHBUS_REQUIRE_REDIS, as requireRedisServer.
 * Call once at the top of a file (it registers an afterEach).
 */
export function ownRedisServers(): { start(ctx: SkipCtx, args?: string[], port?: number): Promise<RedisServer> } {
  const mine: RedisServer[] = [];
  afterEach(async () => {
    for (const s of mine.splice(0)) {
      s.resume();
      await s.stop();
    }
  });
  return {
    async start(ctx, args = [], port) {
      requireRedisServer(ctx);
      const s = await startRedisServer(args, port);
      mine.push(s);
      return s;
    },
  };
}
