/**
 * Vitest setup file (vitest.config.ts `setupFiles`): gives each test worker
 * process its own slice of freePort's range (MESHBUS_PORT_RANGE, inherited
 * by the nodes and CLIs it spawns), so two workers never pick the same port
 * between choosing it and binding it. Slices of 1,596 ports for pool ids
 * 1..8 (more workers share slices again, mod 8).
 */
const id = Number(process.env['VITEST_POOL_ID'] ?? '');
if (Number.isInteger(id) && id >= 1 && process.env['MESHBUS_PORT_RANGE'] === undefined) {
  const slice = Math.floor((32_768 - 20_000) / 8);
  const lo = 20_000 + ((id - 1) % 8) * slice;
  process.env['MESHBUS_PORT_RANGE'] = `${lo}-${lo + slice - 1}`;
}
export {};
