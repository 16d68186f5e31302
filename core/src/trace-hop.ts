import { decodeBody, isTraceId, type Frame } from '@meshbus/proto';
import type { Subscriber } from './subscriber.js';

/**
 * One node's report about a traced event (SPEC 10.9). It names nodes, never
 * a client: whoever traces learns the path and the timings, not who else
 * receives the topic.
 */
export interface TraceHop {
  node: string;
  name: string;
  /** Id of the node where the traced event entered the mesh (its header origin): the node whose tracer may see this record. */
  origin: string;
  /** Hop count of the event when it reached this node (0 at the origin node). */
  hops: number;
  topic: string;
  /** Where the event came from: "client", "peer <node id>" or "internal". */
  from: string;
  /** Wall-clock ms (with fraction) when routing started and ended on this node. */
  in: number;
  out: number;
  /** Receivers it was handed to: "client", "internal" or "peer <node id>", each with " (group)" for a queue-group delivery. */
  to: string[];
}

/**
 * What a hop record says of a receiver or sender: peers by node id (the mesh
 * topology is the tracer's to see), a client only as "client", whatever its
 * id, so a trace never tells one client who the others are.
 */
export function hopLabel(s: { kind: string; label?: string }, group?: boolean): string {
  // Links to other nodes (peers, leaves, gateways) are named by node id; clients never are.
  const who = s.kind === 'peer' || s.kind === 'leaf' || s.kind === 'gateway' ? (s.label ?? s.kind) : s.kind;
  return group === true ? `${who} (group)` : who;
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
    origin: f.origin,
    hops: f.hops,
    topic: f.topic,
    from: from === undefined ? 'internal' : hopLabel(from),
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

/** Maps and arrays a hop record holds: the record and `to` (and room). */
const HOP_RECORD_CONTAINERS = 4;

/**
 * A hop record as it arrives (the payload of an event on `_TRACE.<id>`,
 * published by whichever node handled the traced event and forwarded by
 * peers: another process's bytes), decoded within its bound on maps and
 * arrays (SPEC 7), or undefined when it is not one. Before, a record was
 * decoded unbounded, by the node whose tracer waits and by `meshbus trace`.
 */
export function readHopRecord(payload: Uint8Array): TraceHop | undefined {
  try {
    return decodeBody(payload, HOP_RECORD_CONTAINERS) as unknown as TraceHop;
  } catch {
    return undefined;
  }
}
