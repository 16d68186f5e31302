/** The benchmark scenarios: what runs, on how many nodes, with how many clients in how many processes. */

import type { TargetName } from './targets/types.js';

export type ScenarioKind = 'stream' | 'latency' | 'idle';

export interface Scenario {
  id: string;
  title: string;
  kind: ScenarioKind;
  /** Nodes: publishers on the first, subscriber processes spread over the others (1: all on one). */
  nodes: 1 | 2 | 3;
  /** Publishers (stream), requesters (latency) or connections (idle). */
  pubs: number;
  /** Subscribers (stream) or responders (latency). */
  subs: number;
  /** Processes the publishers / subscribers are spread over (never the same process as the other side). */
  pubProcs: number;
  subProcs: number;
  /** Runs at every payload size (idle does not). */
  sized: boolean;
  /** Only with --full (long or heavy). */
  full: boolean;
  what: string;
  /** Clients connect over WebSocket (meshbus's gateway, `--ws-port`) instead of TCP. */
  ws?: boolean;
  /** Targets this scenario runs against (default: all). */
  only?: readonly TargetName[];
  /** Payload sizes of this scenario when not the suite's. */
  sizes?: readonly number[];
  /** The first subscriber process is a slow consumer: it busy-waits this many µs per event. */
  slowUs?: number;
  /** The `relay` target (the ceiling) runs this scenario too. */
  ceiling?: boolean;
  /** Subscriptions added on the node that do NOT match the published topic (mixed literal and wildcard; `fillerPatterns`), before the run. */
  fill?: number;
  /** Another client subscribes and unsubscribes this many non-matching patterns per second (pairs; `fillerPattern`) while the publisher runs. */
  churn?: number;
  /** Distinct topics the publisher cycles through (`bench.events.t<i>`; subscribers take `bench.events.*`). */
  topics?: number;
  /** Paced publisher at this fraction of the target's own max 1 → 1 rate (same run), latency per event at the subscriber. */
  pace?: number;
  /**
   * Whose max 1 → 1 rate `pace` is a fraction of: 'own' (default, each
   * target its own) or 'slowest' (the lowest among the scenario's targets in
   * this run, so every target carries the same load in events/s).
   */
  paceOf?: 'own' | 'slowest';
  /**
   * Measured time per run (ms) when longer than the suite's `--duration`:
   * request/reply makes ~5,000 round trips a second here, so a 3-s round has
   * ~15 samples past its p99.9; 10-s rounds, pooled over 3 rounds
   * (run.ts poolLatency), ~150.
   */
  minDurationMs?: number;
  /** A point of a "cost as the work grows" series: which series, and its x (subscriptions or topics). */
  growth?: { series: 'subscriptions' | 'topics'; x: number };
}

export const SIZES = [16, 128, 4096] as const;

/** Busy-wait per event of the slow subscriber of the `slow` scenario (≈ 40 k events/s at most). */
export const SLOW_US = 25;

export function scenarios(full: boolean): Scenario[] {
  const idleConns = full ? 10_000 : 2_000;
  return [
    { id: '1to1', title: '1 pub → 1 sub, one node', kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, ceiling: true,
      what: 'events/s received by one subscriber from one publisher through one node' },
    { id: '1to1-2nodes', title: '1 pub → 1 sub, across two nodes', kind: 'stream', nodes: 2, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false,
      what: 'the same, publisher on node A and subscriber on node B of a 2-node cluster (NATS: 2 servers with routes)' },
    { id: '1to1-ws', title: '1 pub → 1 sub over WebSocket', kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, ws: true, only: ['meshbus'],
      what: '1to1 with both clients on the WebSocket gateway (meshbus only), reported as a ratio to meshbus 1to1 over TCP of the same run' },
    { id: 'fanout10', title: 'fan-out 1 → 10 (TCP)', kind: 'stream', nodes: 1, pubs: 1, subs: 10, pubProcs: 1, subProcs: 2, sized: true, full: false,
      what: 'deliveries/s summed over 10 subscribers (2 processes of 5 connections) of one topic' },
    { id: 'fanout10-ws', title: 'fan-out 1 → 10 (WebSocket)', kind: 'stream', nodes: 1, pubs: 1, subs: 10, pubProcs: 1, subProcs: 2, sized: true, full: false, ws: true, only: ['meshbus'],
      what: 'fanout10 with every client on the WebSocket gateway (meshbus only: the nats npm client and ioredis speak TCP)' },
    { id: 'fanout10-3nodes', title: 'fan-out 1 → 10 across three nodes', kind: 'stream', nodes: 3, pubs: 1, subs: 10, pubProcs: 1, subProcs: 2, sized: true, full: false, only: ['meshbus', 'nats'],
      what: 'publisher on node A, 5 subscribers on node B and 5 on node C (meshbus: 3 `meshbus start`, full mesh; NATS: 3 servers with routes)' },
    { id: 'm2m4x4', title: '4 pubs → 4 subs', kind: 'stream', nodes: 1, pubs: 4, subs: 4, pubProcs: 2, subProcs: 2, sized: true, full: false,
      what: 'deliveries/s summed over 4 subscribers of one topic fed by 4 publishers (2+2 processes)' },
    { id: 'reqrep', title: 'request/reply latency', kind: 'latency', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, minDurationMs: 10_000,
      what: 'round trip of one request at a time, requester and responder in separate processes; HDR histogram p50/p99/p99.9 of every round\'s round trips together (10-s rounds)' },
    { id: 'load-p99', title: 'delivery latency at 50 % load', kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, only: ['meshbus', 'nats'], pace: 0.5,
      what: "1 → 1 with a paced publisher at 50 % of the target's own 1to1 rate of this run; latency per event (publish call → subscriber callback, µs) p50/p99/p99.9" },
    { id: 'load-p99-same', title: 'delivery latency at the same load', kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, only: ['meshbus', 'nats'], pace: 0.5, paceOf: 'slowest',
      what: "load-p99 with every target paced at the same rate: 50 % of the slowest target's 1to1 rate of this run at that size (NATS's, as a rule); compares latency at equal load" },
    ...growth(),
    { id: 'fanout1000', title: 'fan-out 1 → 1,000 (TCP)', kind: 'stream', nodes: 1, pubs: 1, subs: 1000, pubProcs: 1, subProcs: 4, sized: true, full: true,
      what: 'deliveries/s summed over 1,000 subscribers (4 processes of 250)' },
    { id: 'fanout1000-ws', title: 'fan-out 1 → 1,000 (WebSocket)', kind: 'stream', nodes: 1, pubs: 1, subs: 1000, pubProcs: 1, subProcs: 4, sized: true, full: true, ws: true, only: ['meshbus'],
      what: 'fanout1000 over the WebSocket gateway (meshbus only)' },
    { id: 'slow', title: 'slow consumer, across two nodes', kind: 'stream', nodes: 2, pubs: 1, subs: 2, pubProcs: 1, subProcs: 2, sized: true, full: false, sizes: [4096], slowUs: SLOW_US,
      what: `publisher on node A, two subscribers on node B: one busy-waits ${SLOW_US} µs per event, one is normal; lost and disconnects per subscriber (servers at their defaults)` },
    { id: 'idle', title: `idle connections (${idleConns.toLocaleString('en')})`, kind: 'idle', nodes: 1, pubs: idleConns, subs: 0, pubProcs: 4, subProcs: 0, sized: false, full: false,
      what: `server RSS growth for ${idleConns.toLocaleString('en')} idle client connections, scaled to 10,000` },
  ];
}

/** Payload of the growth series: one size, to keep the suite short. */
export const GROWTH_SIZE = 128;

/**
 * "Cost as the work grows": 1 → 1 at 128 B with 1, 1,000 and 100,000
 * subscriptions on the node (all but the subscriber's own do not match the
 * topic), and with 1, 100 and 10,000 distinct topics in flight. meshbus and
 * NATS (Redis: PSUBSCRIBE patterns are another mechanism, not compared).
 */
function growth(): Scenario[] {
  const base = { kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false, only: ['meshbus', 'nats'], sizes: [GROWTH_SIZE] } as const;
  const subs = [1, 1000, 100_000].map(
    (n): Scenario => ({ ...base, id: `subs-${label(n)}`, title: `1 → 1 with ${n.toLocaleString('en')} subscriptions on the node`, fill: n - 1, growth: { series: 'subscriptions', x: n },
      what: `1 → 1 at ${GROWTH_SIZE} B with ${(n - 1).toLocaleString('en')} other subscriptions on the node that do not match (literal and wildcard, fillerPatterns), plus the subscriber's; node RSS per subscription` }),
  );
  const topics = [1, 100, 10_000].map(
    (n): Scenario => ({ ...base, id: `topics-${label(n)}`, title: `1 → 1 cycling ${n.toLocaleString('en')} topics`, topics: n, growth: { series: 'topics', x: n },
      what: `1 → 1 at ${GROWTH_SIZE} B, the publisher cycling ${n.toLocaleString('en')} topics bench.events.t<i>, the subscriber on bench.events.*` }),
  );
  // Subscriptions that come and go (per-view or per-request subscriptions of an app) must not make every publish walk the trie again.
  const churn: Scenario = { ...base, id: 'churn', title: `1 → 1 cycling 1,000 topics, ${CHURN_RATE.toLocaleString('en')} subscribe/unsubscribe pairs/s`, topics: 1000, churn: CHURN_RATE,
    what: `1 → 1 at ${GROWTH_SIZE} B cycling 1,000 topics while another client subscribes and unsubscribes ${CHURN_RATE.toLocaleString('en')} non-matching patterns per second, one pair a millisecond (literal and wildcard, fillerPattern)` };
  return [...subs, ...topics, churn];
}

/** Subscribe + unsubscribe pairs per second of the `churn` scenario. */
export const CHURN_RATE = 1000;

const label = (n: number): string => (n >= 1000 ? `${n / 1000}k` : String(n));

/**
 * The i-th subscription pattern that does NOT match the bench topics
 * (`bench.events.x`, `bench.events.t<k>`): a mix of literal and wildcard
 * patterns sharing the topics' prefixes, so a lookup cannot skip them by the
 * first token. Valid for meshbus and NATS alike.
 */
export function fillerPattern(i: number): string {
  switch (i % 4) {
    case 0:
      return `bench.events.y${i}`; // literal sibling
    case 1:
      return `bench.*.y${i}`; // single-token wildcard in the middle
    case 2:
      return `*.events.z${i}`; // leading wildcard
    default:
      return `bench.events.x.${i}.>`; // under the topic, never the topic itself
  }
}

/**
 * Events per flush: ~256 KiB per batch, between 16 and 1,000 events, and at
 * most ~4 MiB of deliveries per batch for wide fan-outs (1 → 1,000 gets 32
 * events of 128 B per flush instead of 1,000, so a 3 s run is more than a
 * handful of batches). The same for every target.
 */
export function batchFor(payload: number, subs = 1): number {
  const perPayload = Math.max(16, Math.min(1000, Math.floor((256 * 1024) / payload)));
  return Math.min(perPayload, Math.max(16, Math.floor((4 * 1024 * 1024) / (payload * subs))));
}

/** Splits n items over k parts as evenly as possible. */
export function split(n: number, k: number): number[] {
  const parts = Math.max(1, Math.min(k, n));
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}
