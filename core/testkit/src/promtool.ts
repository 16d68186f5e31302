/**
 * `promtool check metrics` (Debian's prometheus package) on an exposition.
 * Without promtool a test is skipped with the reason printed, or fails under
 * MESHBUS_REQUIRE_PROMTOOL=1 (CI, which installs it).
 */
import { spawnSync } from 'node:child_process';

export const PROMTOOL = process.env['MESHBUS_PROMTOOL'] ?? 'promtool';

/** promtool's verdict on `text`: exit code and what it printed; or skips the test (ctx.skip) when promtool is absent. */
export function promtoolCheck(ctx: { skip(note?: string): never }, text: string): { code: number; out: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    const msg = `no ${PROMTOOL} on this machine; install it with "apt-get install -y prometheus"`;
    if (process.env['MESHBUS_REQUIRE_PROMTOOL'] === '1') throw new Error(`MESHBUS_REQUIRE_PROMTOOL=1 but ${msg}`);
    console.warn(`skipped: ${msg}`);
    ctx.skip(msg);
  }
  if (r.error) throw r.error;
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/**
 * Families that clash once written as OpenMetrics, where a counter's family
 * is its name without `_total`: e.g. a gauge `x_connections` beside a
 * counter `x_connections_total`.
 */
export function openMetricsClashes(types: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [name, type] of types) {
    if (type === 'counter' && name.endsWith('_total') && types.has(name.slice(0, -6))) out.push(`${name.slice(0, -6)} / ${name}`);
  }
  return out;
}
