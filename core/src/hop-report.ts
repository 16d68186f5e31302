import { encodeBody, thrownText, type Frame } from '@meshbus/proto';
import type { Logger } from './logger.js';
import type { OtlpExporter, TraceParent } from './otlp-export.js';
import type { Subscriber } from './subscriber.js';
import { throttled } from './told-recently.js';
import { hopRecord } from './trace-hop.js';

/** What reportHop needs of the node a traced event went through (MeshNode). */
export interface HopReporter {
  readonly id: string;
  readonly options: { readonly name: string };
  readonly stats: { traceHops: number };
  readonly logger: Logger;
  readonly otlp: OtlpExporter | undefined;
  publishLocal(topic: string, payload: Uint8Array): number;
}

/**
 * Publishes the hop record of a traced event on node `n` (SPEC 10.9, trace-hop.ts), if its trace id is well-formed,
 * and exports its OTLP span (`otel`: it carries a traceparent). `tIn`: traceClock() when routing started; `to`: the
 * receivers' hop labels. A record the node cannot publish is logged (throttled), never thrown.
 */
export function reportHop(n: HopReporter, f: Frame, from: Subscriber | undefined, tIn: number, to: string[], otel?: TraceParent): void {
  if (otel) n.otlp!.hop(f, otel, from, tIn, to);
  if (!f.traced) return;
  const record = hopRecord(f, { id: n.id, name: n.options.name }, from, tIn, to);
  if (record === undefined) return;
  n.stats.traceHops++;
  try {
    n.publishLocal(record.topic, encodeBody(record.hop));
  } catch (e) {
    throttled(n.logger).warn({ err: thrownText(e) }, 'trace report failed');
  }
}
