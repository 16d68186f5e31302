/**
 * assertPlainMsgpack for the browser and mobile bundles (sdk
 * scripts/build-browser.mjs swaps it in for msgpack-subset.ts): their msgpack
 * decoder (sdk mini-msgpack) accepts only that subset itself — it refuses
 * extension types, ill-formed UTF-8, other map keys and trailing bytes, as
 * sdk/test/mini-msgpack.test.ts checks against the full rule — so the check
 * is not repeated there (0.8 KB of the gzipped bundle). Nodes, which decode
 * with msgpackr, run the full rule on every block they take in.
 */
/** No-op in the bundles (see above). */
export function assertPlainMsgpack(_b: Uint8Array, _maxContainers?: number): void {}

/** Nodes only (they decode clients' control bodies); a no-op in the bundles. */
export function assertPlainBody(_b: Uint8Array, _maxContainers: number): void {}
