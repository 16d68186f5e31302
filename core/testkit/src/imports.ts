import { fileURLToPath } from 'node:url';

/**
 * A `node --import` preload (fixtures/record-imports.mjs) that appends every
 * module URL the ESM loader resolves to the file named by MB_IMPORT_LOG: how
 * tests check what a process loaded (`node --import <hook>` or NODE_OPTIONS).
 */
export const RECORD_IMPORTS_HOOK = fileURLToPath(new URL('../fixtures/record-imports.mjs', import.meta.url));

/** The npm packages (`ws`, `@scope/name`) among module URLs, in order of first appearance. */
export function packagesIn(urls: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const url of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) out.add(m[1]!);
  }
  return out;
}
