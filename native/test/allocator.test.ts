/**
 * tuneAllocator: glibc's M_TOP_PAD for a process that runs a node
 * (src/allocator.cc; why in bench/README "Page faults and the C allocator").
 * The setting itself cannot be read back from glibc; what `meshbus start`
 * does with it is checked on a real process in bin/test/cli-allocator.test.ts.
 */
import { afterEach, expect, it } from 'vitest';
import { NODE_TOP_PAD, tuneAllocator } from '../src/index.js';
import { NATIVE_NOTE, needNative } from './helpers.js';

const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;
const saved = { ...process.env };
afterEach(() => {
  for (const k of ['MALLOC_TOP_PAD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_', 'GLIBC_TUNABLES']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

it(`applies the pad where the C library is glibc${NATIVE_NOTE}`, (ctx) => {
  needNative(ctx);
  expect(NODE_TOP_PAD).toBe(16 * 1024 * 1024);
  expect(tuneAllocator()).toBe(glibc ? 'applied' : 'not glibc');
  // Idempotent, and 0 (glibc's own default is 128 KiB) is a value like any other.
  expect(tuneAllocator(0)).toBe(glibc ? 'applied' : 'not glibc');
  expect(tuneAllocator(NODE_TOP_PAD)).toBe(glibc ? 'applied' : 'not glibc');
});

it('leaves glibc alone when the operator set its malloc through the environment', () => {
  for (const [k, v] of [
    ['MALLOC_TOP_PAD_', '131072'],
    ['MALLOC_TRIM_THRESHOLD_', '1048576'],
    ['MALLOC_MMAP_THRESHOLD_', '262144'],
    ['GLIBC_TUNABLES', 'glibc.malloc.top_pad=65536'],
  ] as const) {
    process.env[k] = v;
    expect(tuneAllocator()).toBe('set by the operator');
    delete process.env[k];
  }
  // A tunable of another part of glibc is not a malloc setting.
  process.env['GLIBC_TUNABLES'] = 'glibc.pthread.rseq=0';
  expect(tuneAllocator()).not.toBe('set by the operator');
});

it('refuses a pad that is not an integer in [0, 1 GiB], with a RangeError', () => {
  for (const bad of [-1, 1.5, 2 ** 30 + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(() => tuneAllocator(bad)).toThrow(RangeError);
  }
});
