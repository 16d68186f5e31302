import type { LatencyObserver } from '../stats.js';
import type { DroppedReplies } from './inbox.js';

/**
 * The content type of GET /metrics: the Prometheus text exposition format
 * 0.0.4, as prom-client writes it (`Registry.PROMETHEUS_CONTENT_TYPE`).
 * The series themselves are in node-metrics.ts, loaded with prom-client when
 * the HTTP plugin registers (not by importing `@meshbus/core/http`).
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Counters of the HTTP API itself. */
export interface HttpStats {
  published: number;
  /** `abandoned`: the caller went before its reply came (the wait given up then). */
  requests: { ok: number; timeout: number; noResponders: number; failed: number; abandoned: number };
  /** Messages on the HTTP inbox that answered no request in flight (forged, late or malformed). */
  repliesDropped: DroppedReplies;
  /** Round trip of each answered POST /v1/request, seconds (publish to reply); a no-op until /metrics sets it. */
  roundTrip: LatencyObserver;
}

export function newHttpStats(): HttpStats {
  return {
    published: 0,
    requests: { ok: 0, timeout: 0, noResponders: 0, failed: 0, abandoned: 0 },
    repliesDropped: { unknownToken: 0, badCorrelation: 0, malformed: 0 },
    roundTrip: { observe() {} },
  };
}
