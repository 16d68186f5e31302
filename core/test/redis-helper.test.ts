/**
 * The test Redis helper never lets a durability test pass unchecked: with
 * nothing answering at the shared address it starts a redis-server of its
 * own; without redis-server the test is reported as skipped, and under
 * MESHBUS_REQUIRE_REDIS=1 (CI) it fails instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort, ping, stopStartedRedis, testRedis } from '@meshbus/testkit';

afterEach(async () => {
  vi.unstubAllEnvs();
  await stopStartedRedis();
});

/** A ctx whose skip() records the reason (and stops the caller as vitest's does). */
function recordingCtx(): { skipped: string[]; skip(note?: string): never } {
  const skipped: string[] = [];
  return {
    skipped,
    skip(note?: string): never {
      skipped.push(note ?? '');
      throw new Error('skipped');
    },
  };
}

describe('test Redis helper', () => {
  it('starts redis-server itself when nothing answers at MESHBUS_TEST_REDIS_URL, and stops it afterwards', async (ctx) => {
    const dead = await freePort();
    vi.stubEnv('MESHBUS_TEST_REDIS_URL', `redis://127.0.0.1:${dead}`);
    const r = await testRedis(ctx);
    const port = Number(new URL(r.url).port);
    expect(port).not.toBe(dead);
    expect(port).not.toBe(6379);
    const c = new Redis(r.url, { maxRetriesPerRequest: 1 });
    try {
      await c.set(`${r.prefix}k`, 'v');
      expect(await c.get(`${r.prefix}k`)).toBe('v');
    } finally {
      c.disconnect();
    }
    await r.cleanup();
    await stopStartedRedis();
    expect(await ping(port)).toBe(false);
  });

  it('uses the Redis at MESHBUS_TEST_REDIS_URL when it answers', async (ctx) => {
    const r0 = await testRedis(ctx); // the shared one, or one we started
    vi.stubEnv('MESHBUS_TEST_REDIS_URL', r0.url);
    const r = await testRedis(ctx);
    expect(r.url).toBe(r0.url);
    expect(r.prefix).not.toBe(r0.prefix);
  });

  describe('without redis-server on the PATH', () => {
    const emptyBin = (): string => {
      const dir = mkdtempSync(join(tmpdir(), 'meshbus-nobin-'));
      return dir;
    };

    it('reports the test as skipped, with the reason', async () => {
      const dir = emptyBin();
      try {
        vi.stubEnv('MESHBUS_TEST_REDIS_URL', `redis://127.0.0.1:${await freePort()}`);
        vi.stubEnv('MESHBUS_REQUIRE_REDIS', '0');
        vi.stubEnv('PATH', dir);
        const ctx = recordingCtx();
        await expect(testRedis(ctx)).rejects.toThrow('skipped');
        expect(ctx.skipped).toHaveLength(1);
        expect(ctx.skipped[0]).toContain('redis-server is not installed');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('fails under MESHBUS_REQUIRE_REDIS=1 instead of skipping', async () => {
      const dir = emptyBin();
      try {
        vi.stubEnv('MESHBUS_TEST_REDIS_URL', `redis://127.0.0.1:${await freePort()}`);
        vi.stubEnv('MESHBUS_REQUIRE_REDIS', '1');
        vi.stubEnv('PATH', dir);
        const ctx = recordingCtx();
        await expect(testRedis(ctx)).rejects.toThrow('MESHBUS_REQUIRE_REDIS=1 but no Redis');
        expect(ctx.skipped).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
