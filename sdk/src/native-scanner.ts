import type { FrameScanner } from '@meshbus/proto';

/**
 * The frame scanner of the native addon (`@meshbus/native`, an optional
 * dependency: a node-gyp build that may be missing), for the Node
 * transports. The decoder hands it each received chunk in one call: header
 * checks and their CRCs in C++ (the CPU's CRC instruction) instead of one
 * JavaScript check per frame; chunks under 128 bytes stay in JavaScript
 * (SCAN_NATIVE_MIN_BYTES). Measured with bench/client-cost.mjs (128 B
 * events, 64 KiB chunks): receive 266-359 ns of client CPU per event
 * against 400-622 with proto's scanner (bench/README.md). Same frames and
 * same errors either way (native/test/differential.test.ts).
 *
 * Loaded at the first Node connection, never at import (a client that
 * never connects never loads it); absent, unbuilt or off
 * (`MESHBUS_NATIVE=0`), the decoder keeps proto's scanner.
 */
let scanner: FrameScanner | undefined;
let loading: Promise<void> | undefined;

/** What `@meshbus/native` exports that is used here. */
interface NativeModule {
  ops: { scanner: FrameScanner };
  opsChoice: { scan: 'native' | 'js' };
}

/** The package name in a variable: a bundler of a Node app must not fail on an optional package it cannot find. */
const NATIVE = '@meshbus/native';

/** Starts loading the addon once; resolves when it is loaded or known absent (never rejects). */
export function loadNativeScanner(): Promise<void> {
  return (loading ??= (import(NATIVE) as Promise<NativeModule>).then(
    (m) => {
      if (m.opsChoice.scan === 'native') scanner = m.ops.scanner;
    },
    () => undefined,
  ));
}

/** The native scanner once loaded, else undefined. */
export function nativeScanner(): FrameScanner | undefined {
  return scanner;
}
