import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { NodeStats } from '../stats.js';

/** One second of traffic: rates per second over the interval that ended at `t`. */
export interface RateSample {
  /** End of the interval, ms since the epoch. */
  t: number;
  msgsIn: number;
  msgsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Event-loop lag over the interval: 99th percentile, ms. */
  lagP99Ms: number;
}

/** Event-loop lag of the last completed window, seconds. */
export interface LagWindow {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Samples the node's counters once per `intervalMs` (default 1 s) and keeps
 * the last `size` samples as rates (default 300: five minutes) for the
 * dashboard. Prometheus computes its own rates from the counters; this is
 * only for the page. Also owns the event-loop delay monitor, read and reset
 * at each sample.
 */
export class RateHistory {
  private readonly samples: RateSample[] = [];
  private last: { t: number; msgsIn: number; msgsOut: number; bytesIn: number; bytesOut: number };
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly loop: IntervalHistogram;
  lag: LagWindow = { p50: 0, p99: 0, max: 0, mean: 0 };
  /** Event-loop delay samples since start (the completed windows): how many, and their sum in seconds. */
  readonly lagTotals = { count: 0, sumSeconds: 0 };

  constructor(
    private readonly stats: NodeStats,
    readonly intervalMs = 1000,
    readonly size = 300,
  ) {
    this.last = this.snapshot();
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** The samples, oldest first. */
  list(): readonly RateSample[] {
    return this.samples;
  }

  /** The most recent sample, or zeros before the first. */
  latest(): RateSample {
    return this.samples[this.samples.length - 1] ?? { t: Date.now(), msgsIn: 0, msgsOut: 0, bytesIn: 0, bytesOut: 0, lagP99Ms: 0 };
  }

  /** Takes a sample now (the timer calls this; tests may too). */
  sample(): RateSample {
    const now = this.snapshot();
    const dt = Math.max(1, now.t - this.last.t) / 1000;
    const h = this.loop;
    const ns = (v: number): number => (Number.isFinite(v) ? v / 1e9 : 0);
    this.lag = h.count > 0 ? { p50: ns(h.percentile(50)), p99: ns(h.percentile(99)), max: ns(h.max), mean: ns(h.mean) } : this.lag;
    if (h.count > 0) {
      this.lagTotals.count += h.count;
      this.lagTotals.sumSeconds += ns(h.mean) * h.count;
    }
    h.reset();
    const s: RateSample = {
      t: now.t,
      msgsIn: round((now.msgsIn - this.last.msgsIn) / dt),
      msgsOut: round((now.msgsOut - this.last.msgsOut) / dt),
      bytesIn: round((now.bytesIn - this.last.bytesIn) / dt),
      bytesOut: round((now.bytesOut - this.last.bytesOut) / dt),
      lagP99Ms: round(this.lag.p99 * 1000),
    };
    this.last = now;
    this.samples.push(s);
    if (this.samples.length > this.size) this.samples.splice(0, this.samples.length - this.size);
    return s;
  }

  close(): void {
    clearInterval(this.timer);
    this.loop.disable();
  }

  private snapshot(): { t: number; msgsIn: number; msgsOut: number; bytesIn: number; bytesOut: number } {
    const s = this.stats;
    return { t: Date.now(), msgsIn: s.msgsIn, msgsOut: s.msgsOut, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
  }
}

const round = (v: number): number => Math.round(v * 100) / 100;
