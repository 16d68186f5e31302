/** The benchmark scenarios: what runs, on how many nodes, with how many clients in how many processes. */

import type { TargetName } from './targets/types.js';

export type ScenarioKind = 'stream' | 'latency' | 'idle';

export interface Scenario {
  id: string;
  title: string;
  kind: ScenarioKind;
  nodes: 1 | 2;
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
}

export const SIZES = [16, 128, 4096] as const;

/** Busy-wait per event of the slow subscriber of the `slow` scenario (≈ 40 k events/s at most). */
export const SLOW_US = 25;

export function scenarios(full: boolean): Scenario[] {
  const idleConns = full ? 10_000 : 2_000;
  return [
    { id: '1to1', title: '1 pub → 1 sub, one node', kind: 'stream', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false,
      what: 'events/s received by one subscriber from one publisher through one node' },
    { id: '1to1-2nodes', title: '1 pub → 1 sub, across two nodes', kind: 'stream', nodes: 2, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false,
      what: 'the same, publisher on node A and subscriber on node B of a 2-node cluster (NATS: 2 servers with routes)' },
    { id: 'fanout10', title: 'fan-out 1 → 10 (TCP)', kind: 'stream', nodes: 1, pubs: 1, subs: 10, pubProcs: 1, subProcs: 2, sized: true, full: false,
      what: 'deliveries/s summed over 10 subscribers (2 processes of 5 connections) of one topic' },
    { id: 'fanout10-ws', title: 'fan-out 1 → 10 (WebSocket)', kind: 'stream', nodes: 1, pubs: 1, subs: 10, pubProcs: 1, subProcs: 2, sized: true, full: false, ws: true, only: ['meshbus'],
      what: 'fanout10 with every client on the WebSocket gateway (meshbus only: the nats npm client and ioredis speak TCP)' },
    { id: 'm2m4x4', title: '4 pubs → 4 subs', kind: 'stream', nodes: 1, pubs: 4, subs: 4, pubProcs: 2, subProcs: 2, sized: true, full: false,
      what: 'deliveries/s summed over 4 subscribers of one topic fed by 4 publishers (2+2 processes)' },
    { id: 'reqrep', title: 'request/reply latency', kind: 'latency', nodes: 1, pubs: 1, subs: 1, pubProcs: 1, subProcs: 1, sized: true, full: false,
      what: 'round trip of one request at a time, requester and responder in separate processes; HDR histogram p50/p99/p99.9' },
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
