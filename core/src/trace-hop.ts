import { isTraceId, type Frame } from '@meshbus/proto';
import type { Subscriber } from './subscriber.js';

/** One node's report about a traced event. */
export interface TraceHop {
  node: string;
  name: string;
  /** Hop count of the event when it reached this node (0 at the origin node). */
  hops: number;
  topic: string;
  /** Where the event came from: "client <id>", "peer <node id>" or "internal". */
  from: string;
  /** Wall-clock ms (with fraction) when routing started and ended on this node. */
  in: number;
  out: number;
  /** Receivers it was handed to: "client <id>", "peer <node id>", with "(group g)" for queue groups. */
  to: string[];
}

/** Wall-clock ms with a fraction, for hop timings. */
export function traceClock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Message tracing: a node that handles an event with the TRACE flag
 * publishes one hop record (node, time in, time out, where it went) as an
 * event on `_TRACE.<trace id>`, routed through the mesh like any other, so
 * whoever traces subscribes there and sees the path hop by hop. Only for a
 * well-formed (16 hex digit) id, whoever sent the event: nobody else picks
 * the topic the node publishes on (SPEC 10.9, 11.1). Returns the record and
 * its topic, or undefined when the event carries no well-formed trace id.
 */
export function hopRecord(f: Frame, node: { id: string; name: string }, from: Subscriber | undefined, tIn: number, to: string[]): { topic: string; hop: TraceHop } | undefined {
  let traceId: string | undefined;
  try {
    traceId = f.ext?.trace;
  } catch {
    traceId = undefined;
  }
  // Only a well-formed random id names the record's topic: a sender (a client
  // checked at ingress, or a peer) never picks where the node publishes.
  if (traceId === undefined || !isTraceId(traceId)) return undefined;
  const hop: TraceHop = {
    node: node.id,
    name: node.name,
    hops: f.hops,
    topic: f.topic,
    from: from?.label ?? from?.kind ?? 'internal',
    in: tIn,
    out: traceClock(),
    to,
  };
  return { topic: `_TRACE.${traceId}`, hop };
}

/**
 * How a hop's node is named to people: "<node id> (<name>)", or the id alone.
 * The one naming of `meshbus trace` lines and of the spans a node exports
 * over OTLP (otlp-export.ts), so both show the same hops.
 */
export function hopName(h: { node: string; name: string }): string {
  return h.name ? `${h.node} (${h.name})` : h.node;
}
