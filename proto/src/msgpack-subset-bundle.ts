import { unpack } from 'msgpackr';
import { ProtocolError } from './errors.js';

/**
 * msgpack-subset.ts for the browser and mobile bundles (sdk
 * scripts/build-browser.mjs swaps it in, and resolves `msgpackr` to sdk
 * mini-msgpack). Their decoder refuses what is outside the subset itself —
 * extension types, ill-formed UTF-8, other map keys, trailing bytes, as
 * sdk/test/mini-msgpack.test.ts checks against the full rule — so the check
 * on the bytes is not repeated there (0.8 KB of the gzipped bundle); the
 * bound on maps and arrays is counted by mini-msgpack as it decodes (its
 * second argument). Nodes, which decode with msgpackr, run the full rule on
 * every block they take in.
 */
/** No-op in the bundles (see above). */
export function assertPlainMsgpack(_b: Uint8Array, _maxContainers?: number): void {}

/** Nodes only (they decode clients' control bodies); a no-op in the bundles. */
export function assertPlainBody(_b: Uint8Array, _maxContainers: number): void {}

/**
 * decodePlain of the bundles: mini-msgpack stops at the map or array past
 * `maxContainers` (a hostile node's 4 MiB WELCOME of empty maps cost a
 * browser tab over a second of CPU per connection attempt).
 */
export function decodePlain(b: Uint8Array, maxContainers: number, code: 'MB_ERR_BAD_EXTENSION' | 'MB_ERR_BAD_BODY'): unknown {
  try {
    // msgpackr's own second argument would be an end offset: this file runs in the bundles only.
    return (unpack as unknown as (b: Uint8Array, budget: number) => unknown)(b, maxContainers);
  } catch (e) {
    throw new ProtocolError(code, (e as Error).message, { cause: e });
  }
}
