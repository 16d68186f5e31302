import { defineConfig } from 'vitest/config';

// One run covers every workspace package. Network tests use loopback only and
// bound their own loops; the generous timeouts are for a loaded 2-core CI box.
export default defineConfig({
  test: {
    include: ['{proto,native,core,cluster,sdk,bench}/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
