import { createHash } from 'node:crypto';
import type { Frame } from '@meshbus/proto';
import type { Logger } from './logger.js';
import type { Subscriber } from './subscriber.js';
import { hopLabel, hopName, traceClock } from './trace-hop.js';
import { throttled } from './told-recently.js';

/** A W3C trace context carried by an event (`traceparent`, `tracestate` headers). */
export interface TraceParent {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** The sender's span, 16 lowercase hex digits. */
  spanId: string;
  flags: number;
  state: string | undefined;
}

/** version-traceid-parentid-flags; version ff is invalid, all-zero ids are invalid (W3C Trace Context §3.2). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace context of `headers`, or undefined when `traceparent` is absent or malformed. */
export function parseTraceParent(headers: Record<string, string> | undefined): TraceParent | undefined {
  const tp = headers?.traceparent;
  if (typeof tp !== 'string' || tp.length > 512) return undefined;
  const m = TRACEPARENT.exec(tp);
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined) || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  const state = headers!.tracestate;
  return { traceId: m[2]!, spanId: m[3]!, flags: parseInt(m[4]!, 16), state: typeof state === 'string' && state.length <= 512 ? state : undefined };
}

/**
 * The span id of the hop `hops` of an event on node `node`, derived from
 * the trace context the event carries: every node computes the same id for
 * the same hop, so the next node names it as its parent without the event
 * being rewritten on the way (it is forwarded as received).
 */
export function hopSpanId(tp: TraceParent, node: string, hops: number): string {
  return createHash('sha256').update(`${tp.traceId}/${tp.spanId}/${node}/${hops}`).digest('hex').slice(0, 16);
}

/** ms since the epoch with a fraction → OTLP's decimal string of nanoseconds. */
function nanos(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1000000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

type AnyValue = { stringValue: string } | { intValue: string } | { arrayValue: { values: AnyValue[] } };
const str = (key: string, v: string): { key: string; value: AnyValue } => ({ key, value: { stringValue: v } });

/** How long one POST of spans may take, ms. */
const POST_TIMEOUT_MS = 10_000;

export interface OtlpOptions {
  /** OTLP/HTTP traces URL; a base URL without a path gets `/v1/traces` (like OTEL_EXPORTER_OTLP_ENDPOINT). */
  endpoint: string;
  /** `service.name` of the node's resource. Default "meshbus". */
  serviceName?: string;
  /** Spans per POST. Default 256. */
  batch?: number;
  /** Longest a span waits before it is sent, ms. Default 1,000. */
  interval?: number;
  /** Spans held at most while the collector is slow or down; more are dropped (counted). Default 4,096. */
  maxQueue?: number;
  /** How long a close waits for the spans still to send, ms (the node's drainTimeout). Default 10,000. */
  closeWaitMs?: number;
}

/**
 * Exports one span per hop of an event that carries a W3C `traceparent`
 * header, over OTLP/HTTP with the JSON encoding (POST, `application/json`),
 * batched. Hand-built on Node's fetch rather than
 * @opentelemetry/exporter-trace-otlp-http: that exporter and the SDK it needs
 * (sdk-trace-base, resources, core, otlp-transformer) are ~50 modules loaded
 * at start, for a node that only ever writes one kind of span.
 *
 * A hop span: name `hopName` (as `meshbus trace` prints it), trace id from
 * the event, parent the sender's span for a hop from a client and the
 * previous node's hop span for a hop from a peer (hopSpanId), start/end the
 * routing time, attributes meshbus.node.id / meshbus.node.name /
 * meshbus.hops / meshbus.from / meshbus.to and messaging.destination.name.
 * Export failures are logged (at most once a minute) and counted; they never
 * affect routing.
 */
export class OtlpExporter {
  readonly url: string;
  private queue: object[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  /** Spans handed to `inFlight` and not yet sent or failed: counted with the queue against maxQueue. */
  private sending = 0;
  /** Aborted when flush() has waited closeWaitMs: what is still sending or queued is given up. */
  private readonly closing = new AbortController();
  private readonly resource: object;
  private readonly batch: number;
  private readonly interval: number;
  private readonly maxQueue: number;
  private readonly closeWaitMs: number;
  exported = 0;
  dropped = 0;
  failed = 0;

  constructor(
    o: OtlpOptions,
    private readonly node: { id: string; name: string },
    private readonly logger: Logger,
  ) {
    const u = new URL(o.endpoint);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
    this.url = u.toString();
    this.batch = o.batch ?? 256;
    this.interval = o.interval ?? 1000;
    this.maxQueue = o.maxQueue ?? 4096;
    this.closeWaitMs = o.closeWaitMs ?? POST_TIMEOUT_MS;
    const attrs = [str('service.name', o.serviceName ?? 'meshbus'), str('service.instance.id', node.id)];
    if (node.name) attrs.push(str('meshbus.node.name', node.name));
    this.resource = { attributes: attrs };
  }

  /** The trace context of an event, when it has headers with a valid `traceparent`. Cheap without an extension block. */
  parentOf(f: Frame): TraceParent | undefined {
    if (f.extLen === 0) return undefined;
    try {
      return parseTraceParent(f.ext?.headers);
    } catch {
      return undefined;
    }
  }

  /** Records the span of one hop: `f` routed by this node from `from` to `to`, starting at `tIn` (traceClock ms). */
  hop(f: Frame, tp: TraceParent, from: Subscriber | undefined, tIn: number, to: string[]): void {
    // What waits for a collector that does not answer (10 s per POST, one at a time) counts too: bounded
    // only by the queue, a silent collector held every traced event's span (the queue is emptied at each batch).
    if (this.queue.length + this.sending >= this.maxQueue) {
      this.dropped++;
      return;
    }
    const hops = f.hops;
    // The same names as meshbus trace's hop records (never a client id).
    const fromLabel = from === undefined ? 'internal' : hopLabel(from);
    const peer = /^peer ([0-9a-f]{16})$/.exec(fromLabel);
    const parent = peer && hops > 0 ? hopSpanId(tp, peer[1]!, hops - 1) : tp.spanId;
    let topic: string;
    try {
      topic = f.topic;
    } catch {
      topic = '';
    }
    this.queue.push({
      traceId: tp.traceId,
      spanId: hopSpanId(tp, this.node.id, hops),
      parentSpanId: parent,
      ...(tp.state !== undefined ? { traceState: tp.state } : {}),
      name: hopName({ node: this.node.id, name: this.node.name }),
      kind: 5, // SPAN_KIND_CONSUMER: the node takes the event in and hands it on
      startTimeUnixNano: nanos(tIn),
      endTimeUnixNano: nanos(traceClock()),
      attributes: [
        str('meshbus.node.id', this.node.id),
        str('meshbus.node.name', this.node.name),
        { key: 'meshbus.hops', value: { intValue: String(hops) } },
        str('meshbus.from', fromLabel),
        { key: 'meshbus.to', value: { arrayValue: { values: to.map((t) => ({ stringValue: t })) } } },
        str('messaging.system', 'meshbus'),
        str('messaging.destination.name', topic),
      ],
    });
    if (this.queue.length >= this.batch) this.send();
    else this.timer ??= setTimeout(() => this.send(), this.interval).unref();
  }

  /** Sends what is queued now (one POST per batch, one at a time). */
  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0) {
      const spans = this.queue.splice(0, this.batch);
      this.sending += spans.length;
      this.inFlight = this.inFlight.then(() => this.post(spans)).finally(() => (this.sending -= spans.length));
    }
  }

  private async post(spans: object[]): Promise<void> {
    const body = JSON.stringify({ resourceSpans: [{ resource: this.resource, scopeSpans: [{ scope: { name: 'meshbus' }, spans }] }] });
    try {
      this.closing.signal.throwIfAborted();
      const signal = AbortSignal.any([AbortSignal.timeout(POST_TIMEOUT_MS), this.closing.signal]);
      const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.exported += spans.length;
    } catch (e) {
      this.failed += spans.length;
      throttled(this.logger).warn({ url: this.url, spans: spans.length, err: (e as Error).message }, 'otlp span export failed');
    }
  }

  /**
   * Sends everything queued and waits for it (node close), at most
   * closeWaitMs in all: then what has not been sent is given up (counted
   * in `failed`). POSTs go one at a time, so a collector that accepts and
   * never answers made a close wait 10 s per batch queued (16 with a full
   * queue: 160 s).
   */
  async flush(): Promise<void> {
    this.send();
    const deadline = setTimeout(() => this.closing.abort(), this.closeWaitMs);
    try {
      await this.inFlight;
    } finally {
      clearTimeout(deadline);
    }
  }
}
