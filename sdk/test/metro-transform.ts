import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SDK_ROOT } from './bundles.js';

const require = createRequire(import.meta.url);

interface Babel {
  transformSync(code: string, options: Record<string, unknown>): { code?: string | null } | null;
}

/**
 * Transforms a script the way Metro's transformer does for a React Native app
 * on an older Hermes: `@babel/core` with `@react-native/babel-preset`, transform
 * profile 'default' (the one for engines that are not Hermes V1: classes,
 * destructuring, async functions and class properties lowered; the
 * 'hermes-stable'/'hermes-canary' profiles now mean Hermes V1 and keep native
 * classes, which the hermes 0.12 CLI of `hermes-engine-cli` does not have).
 * Two differences from an app build, both because the output is one script
 * and not a Metro module graph: `enableBabelRuntime: false` (babel's helpers
 * are inlined instead of `require('@babel/runtime/...')`) and
 * `disableImportExportTransform` (the bundle has no imports left: esbuild
 * already resolved them, where Metro would wrap each module in its own
 * `__d()` factory).
 */
export function metroTransform(code: string, filename: string): string {
  const babel = require('@babel/core') as Babel;
  const out = babel.transformSync(code, {
    babelrc: false,
    configFile: false,
    sourceType: 'script',
    filename,
    presets: [[require.resolve('@react-native/babel-preset'), { enableBabelRuntime: false, disableImportExportTransform: true, unstable_transformProfile: 'default', dev: false }]],
  });
  if (!out?.code) throw new Error(`babel gave no output for ${filename}`);
  return out.code;
}

/** The `hermes` VM of the hermes-engine-cli devDependency (Linux x64 only), or why there is none. */
export function hermesBinary(): { path: string } | { missing: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { missing: `hermes-engine-cli ships no hermes for ${process.platform}-${process.arch} here (linux64-bin only is used)` };
  let dir: string;
  try {
    dir = join(require.resolve('hermes-engine-cli/package.json', { paths: [SDK_ROOT] }), '..');
  } catch {
    return { missing: 'hermes-engine-cli is not installed (npm install)' };
  }
  const path = join(dir, 'linux64-bin', 'hermes');
  return existsSync(path) ? { path } : { missing: `${path} not found` };
}
