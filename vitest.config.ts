import { defineConfig } from 'vitest/config';

// One run covers every workspace package. Network tests use loopback only and
// bound their own loops; the generous timeouts are for a loaded 2-core CI box.
// MESHBUS_LONG=1 (npm run test:reliability) runs the long fuzz, property,
// chaos and soak variants (core/testkit/src/run-size.ts), hence the longer default.
const LONG = process.env['MESHBUS_LONG'] === '1';

export default defineConfig({
  test: {
    include: ['{proto,native,core,cluster,sdk,bin,bench}/test/**/*.test.ts'],
    testTimeout: LONG ? 30 * 60_000 : 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Each worker process picks ports from its own slice (MESHBUS_PORT_RANGE).
    setupFiles: ['core/testkit/src/worker-ports.ts'],
  },
});
