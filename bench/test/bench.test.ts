import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench } from '../src/run.js';
import type { Report } from '../src/report.js';
import type { RunResult } from '../src/runner.js';

// Smoke test of the real harness (built worker, a real `meshbus start` process,
// forked publisher and subscriber): one tiny scenario, no timing assertions.
describe('bench harness', () => {
  const out = mkdtempSync(join(tmpdir(), 'meshbus-bench-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs 1 pub → 1 sub through one meshbus node and writes JSON and SVG', async () => {
    const report = await runBench({ targets: ['meshbus'], scenarios: ['1to1'], sizes: [128], durationMs: 300, warmupMs: 100, outDir: out, log: () => {} });
    const written = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Report;
    expect(written.results).toHaveLength(1);
    const r = written.results[0]!;
    expect(r.error).toBeUndefined();
    expect(r.target).toBe('meshbus');
    expect(r.rate).toBeGreaterThan(0);
    expect(r.sent).toBeGreaterThan(0);
    expect(r.lost).toBeGreaterThanOrEqual(0);
    expect(written.machine.cores).toBeGreaterThan(0);
    expect(report.ratios[0]?.values.meshbus).toBe(r.rate);
    expect(readFileSync(join(out, 'latest.svg'), 'utf8')).toMatch(/^<svg/);
  }, 60_000);
});

describe('growth scenarios', () => {
  it('measures 1 → 1 with 999 non-matching subscriptions on the node and the RSS per subscription, and plots it', async () => {
    const { growthSvg, growthTable } = await import('../src/report-growth.js');
    const report = await runBench({ targets: ['meshbus'], scenarios: ['subs-1k', 'topics-100'], durationMs: 300, warmupMs: 100, log: () => {} });
    const [subs, topics] = report.results;
    expect(subs?.error).toBeUndefined();
    expect(subs?.fillSubs).toBe(999);
    expect(typeof subs?.memPerSub).toBe('number');
    expect(subs?.rate).toBeGreaterThan(0);
    expect(subs?.lost).toBe(0);
    expect(topics?.error).toBeUndefined();
    expect(topics?.rate).toBeGreaterThan(0);
    expect(topics?.lost).toBe(0);
    expect(report.ratios.some((r) => r.scenario === 'subs-1k' && r.metric === 'memPerSub')).toBe(true);
    expect(growthTable(report.results)).toMatch(/\| subscriptions \| 1,000 \|/);
    expect(growthSvg(report)).toMatch(/^<svg[\s\S]*<circle/);
    // The checkout's commit (this test runs in a git clone), `+dirty` with uncommitted changes.
    expect(report.run?.versions.meshbus).toMatch(/^[0-9a-f]{7,}(\+dirty)?$/);
  }, 90_000);
});

describe('--rounds', () => {
  it('refuses a count that is not a positive integer before running anything, and writes no report', async () => {
    const { spawnSync } = await import('node:child_process');
    const { existsSync } = await import('node:fs');
    const out = mkdtempSync(join(tmpdir(), 'meshbus-bench-rounds-'));
    try {
      const run = join(import.meta.dirname, '..', 'dist', 'run.js');
      for (const bad of ['x', '0', '-2', '1.5']) {
        const r = spawnSync(process.execPath, [run, `--rounds=${bad}`, '--targets', 'meshbus', '--scenarios', '1to1', '--sizes', '16', '--duration', '0.2', '--warmup', '0.1', '--out', out], { encoding: 'utf8', timeout: 30_000 });
        expect(r.status, `--rounds ${bad}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toContain('rounds must be a positive integer');
        expect(existsSync(join(out, 'latest.json'))).toBe(false);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('medianRound', () => {
  const paced = (rate: number, p99: number): RunResult => ({
    scenario: 'load-p99', target: 'meshbus', payload: 128, rate, pacedRate: 1000, maxRate: 2000,
    latency: { count: 1000, p50: 10, p99, p999: p99 * 2, max: p99 * 3, mean: 12 },
  } as RunResult);

  it('keeps a paced run\'s median round by its delivery latency, not by its rate (the offered rate, equal in every round)', async () => {
    const { medianRound } = await import('../src/run.js');
    // The outlier round (p99 5,000 µs) has the median rate: a median by rate reported it.
    const m = medianRound([paced(999, 50), paced(1000, 5000), paced(1001, 60)]);
    expect(m.latency?.p99).toBe(60);
    expect(m.roundFigures).toEqual([50, 5000, 60]);
  });

  it('keeps throughput runs by rate and request/reply by p99.9 (held)', async () => {
    const { medianRound } = await import('../src/run.js');
    const tp = (rate: number): RunResult => ({ scenario: '1to1', target: 'meshbus', payload: 16, rate }) as RunResult;
    expect(medianRound([tp(3), tp(1), tp(2)]).rate).toBe(2);
    const rr = (p999: number): RunResult => ({ scenario: 'reqrep', target: 'meshbus', payload: 16, rate: 1, latency: { count: 1, p50: 1, p99: 1, p999, max: 1, mean: 1 } }) as RunResult;
    expect(medianRound([rr(30), rr(10), rr(20)]).latency?.p999).toBe(20);
  });
});

describe('poolLatency', () => {
  it("reports request/reply percentiles over every round's samples together, each round's p99.9 kept, the histograms left out", async () => {
    const { poolLatency } = await import('../src/run.js');
    const { encodeHistogram, newHistogram, summarize } = await import('../src/histogram.js');
    // Three rounds of 1,000 round trips; one of them had 9 slow ones (5 ms).
    const round = (slow: number): RunResult => {
      const h = newHistogram();
      for (let i = 0; i < 1000 - slow; i++) h.recordValue(100 + (i % 50));
      for (let i = 0; i < slow; i++) h.recordValue(5000);
      return { scenario: 'reqrep', target: 'meshbus', payload: 128, rate: 100, timeouts: 1, latency: summarize(h), histogram: encodeHistogram(h) } as RunResult;
    };
    const rs = [round(0), round(9), round(0)];
    expect(rs.map((r) => r.latency!.p999)).toEqual([149, 5003, 149]);
    const p = poolLatency(rs);
    expect(p.latency!.count).toBe(3000);
    // The median round's p99.9 (149 µs) hides the slow round; 9 of the 3,000 samples are past 99.9 %.
    expect(p.latency!.p999).toBe(5003);
    expect(p.latency!.p50).toBe(124);
    expect(p.pooledRounds).toBe(3);
    expect(p.timeouts).toBe(3);
    expect(p.roundFigures).toEqual([149, 5003, 149]);
    expect('histogram' in p).toBe(false);
  });

  it('keeps one round as it is, without its histogram', async () => {
    const { poolLatency } = await import('../src/run.js');
    const r = { scenario: 'reqrep', target: 'nats', payload: 16, rate: 1, latency: { count: 1, p50: 1, p99: 1, p999: 7, max: 7, mean: 1 }, histogram: 'x' } as RunResult;
    const p = poolLatency([r]);
    expect(p.latency?.p999).toBe(7);
    expect(p.pooledRounds).toBeUndefined();
    expect('histogram' in p).toBe(false);
  });
});

describe('WS/TCP ratio', () => {
  it('divides by the TCP twin run in the same rounds, else by the TCP scenario of the run', async () => {
    const { ratios } = await import('../src/report.js');
    const r = (scenario: string, rate: number, extra: Partial<RunResult> = {}): RunResult => ({ scenario, target: 'meshbus', payload: 4096, rate, ...extra }) as RunResult;
    const tcp = r('1to1', 200);
    const paired = ratios([tcp, r('1to1-ws', 90, { tcpTwin: r('1to1', 100) })]);
    expect(paired.find((x) => x.scenario === '1to1-ws')?.ratio.tcp).toBe(0.9);
    const unpaired = ratios([tcp, r('1to1-ws', 90)]);
    expect(unpaired.find((x) => x.scenario === '1to1-ws')?.ratio.tcp).toBe(0.45);
  });
});
