import { afterEach } from 'vitest';

/** What a test registers to undo after it: closing a node, a client, a socket... */
export type Cleanup = () => unknown;

/**
 * A list a test pushes its teardown steps to; after each test of the file
 * they run, last pushed first, each awaited (a node closed after the
 * clients opened on it). Call once at the top of a test file.
 */
export function cleanups(): Cleanup[] {
  const list: Cleanup[] = [];
  afterEach(async () => {
    for (const f of list.splice(0).reverse()) await f();
  });
  return list;
}
