import { afterEach, describe, expect, it } from 'vitest';
import { freePort, portRange } from '../src/free-port.js';

describe('freePort', () => {
  const saved = process.env['MESHBUS_PORT_RANGE'];
  afterEach(() => {
    if (saved === undefined) delete process.env['MESHBUS_PORT_RANGE'];
    else process.env['MESHBUS_PORT_RANGE'] = saved;
  });

  it('picks from MESHBUS_PORT_RANGE (test workers get disjoint slices), never the same port twice in a row', async () => {
    process.env['MESHBUS_PORT_RANGE'] = '24000-24031';
    const got: number[] = [];
    for (let i = 0; i < 20; i++) got.push(await freePort());
    for (const p of got) expect(p >= 24000 && p <= 24031).toBe(true);
    expect(new Set(got).size).toBe(got.length);
  });

  it('ignores a range it cannot use and picks below the ephemeral ports', async () => {
    for (const bad of ['', 'x', '100-200', '30000-30005', '60000-70000']) {
      process.env['MESHBUS_PORT_RANGE'] = bad;
      expect(portRange()).toEqual([20_000, 32_768]);
    }
    const p = await freePort();
    expect(p >= 20_000 && p < 32_768).toBe(true);
  });

  it('each test worker has its own slice', () => {
    expect(process.env['MESHBUS_PORT_RANGE'] ?? saved).toMatch(/^\d+-\d+$/);
  });
});
