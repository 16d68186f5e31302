/** Latency histograms (HdrHistogram, microseconds) and their summary. */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  /** Microseconds. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export type Histogram = hdr.Histogram;

/** 1 µs .. 60 s, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

/** A histogram as text (HdrHistogram's compressed base64), to leave a worker process. */
export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/**
 * The summary of several runs' histograms added together: the percentiles of
 * all their samples, not a median of each run's. A p99.9 rests on the samples
 * past it: ~10 in a 3-s request/reply round, ~10 times as many over rounds
 * of 10 s pooled.
 */
export function pooledSummary(encoded: readonly string[]): LatencySummary {
  const all = newHistogram();
  for (const e of encoded) all.add(hdr.decodeFromCompressedBase64(e, 32, false));
  return summarize(all);
}

export function summarize(h: Histogram): LatencySummary {
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean * 10) / 10,
  };
}
