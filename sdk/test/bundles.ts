import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SDK_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE_DIR = join(SDK_ROOT, 'dist-browser');

/** A browser/mobile bundle, built first when missing or older than the sources' build. */
export function bundle(name: 'meshbus.esm.js' | 'meshbus.iife.js' | 'meshbus.mobile.js'): string {
  const file = join(BUNDLE_DIR, name);
  const src = join(SDK_ROOT, 'dist', 'client.js');
  if (!existsSync(file) || (existsSync(src) && statSync(src).mtimeMs > statSync(file).mtimeMs)) {
    execFileSync(process.execPath, [join(SDK_ROOT, 'scripts', 'build-browser.mjs')], { stdio: 'pipe' });
  }
  return readFileSync(file, 'utf8');
}
