import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scanSource } from '../src/footprint/source-scan.js';
import { idleConns, idleRssOnce, startupOnce } from '../src/footprint/node-figures.js';
import { spread } from '../src/footprint/report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('footprint source scan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshbus-footprint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const put = (p: string, text: string): void => {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  };

  it('counts lines of non-test sources and finds cycles, telling type-only ones apart', () => {
    put('a/src/x.ts', "import {\n  y,\n  z,\n} from './y.js';\nexport const x = 1;\n");
    put('a/src/y.ts', "import type { X } from './x.js';\nexport const y = 2;\n");
    put('a/src/w.ts', "import './v.js';\nconst s = \"import q from './x.js'\";\n");
    put('a/src/v.ts', "export * from './sub/index.js';\n");
    put('a/src/sub/index.ts', "export { w } from '../w.js';\n");
    put('a/src/long.ts', 'const a = 1;\n'.repeat(501));
    put('a/src/edge.ts', 'const a = 1;\n'.repeat(500));
    put('a/src/long.test.ts', 'x\n'.repeat(900));
    put('a/src/types.d.ts', 'x\n'.repeat(900));
    put('a/test/helper.ts', 'x\n'.repeat(900));
    put('b/src/self.ts', "import { self } from './self';\nexport const me = self;\n");
    const s = scanSource(dir, 500);
    expect(s.files).toBe(8);
    expect(s.longFiles).toEqual([{ file: 'a/src/long.ts', lines: 501 }]);
    expect(s.cycles).toEqual([['a/src/sub/index.ts', 'a/src/v.ts', 'a/src/w.ts'], ['a/src/x.ts', 'a/src/y.ts'], ['b/src/self.ts']]);
    // x ⇄ y only through `import type`: not a runtime cycle.
    expect(s.runtimeCycles).toEqual([['a/src/sub/index.ts', 'a/src/v.ts', 'a/src/w.ts'], ['b/src/self.ts']]);
  });

  it('median of an even number of runs is the mean of the middle two', () => {
    expect(spread([4, 1, 3, 2])).toMatchObject({ median: 2.5, min: 1, max: 4 });
    expect(spread([5, 1, 3])).toMatchObject({ median: 3, min: 1, max: 5 });
  });
});

// Real `meshbus start` processes of this checkout, as the script starts them (defaults, free ports).
describe('footprint node figures', () => {
  const co = { label: 'this', root: ROOT };

  it('times a start-up to the first WELCOME', async () => {
    const r = await startupOnce(co);
    expect(r.wall).toBeGreaterThan(0);
    expect(r.cpu).toBeGreaterThan(0);
  }, 30_000);

  it('reads the idle RSS, then times the first HTTP request (it must answer) and reads the RSS after it', async () => {
    const f = await idleRssOnce(co);
    expect(f.rss).toBeGreaterThan(0);
    expect(f.firstHttpMs).toBeGreaterThan(0);
    expect(f.rssAfterHttp).toBeGreaterThan(0);
  }, 30_000);

  it('holds more idle connections than the default per-IP limit, each with its subscription, from a separate process', async () => {
    // 1,100 > maxConnectionsPerIp (1,024): only works because connections come from several loopback addresses.
    const f = await idleConns(co, 1100, () => {}, 200);
    expect(f.openAtEnd).toBe(1100);
    expect(f.nodeAfter).toMatchObject({ connections: 1100, subscriptions: 1100 });
    expect(f.nodeBefore).toMatchObject({ connections: 0, subscriptions: 0 });
    expect(f.rssAfter).toBeGreaterThan(0);
  }, 60_000);
});
