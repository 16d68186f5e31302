import { Frame, type Extension, type Position } from '@meshbus/proto';
import { JsonCodec, StringCodec, viaCodec, type Codec } from './codecs.js';
import { messageOf } from './errors.js';

/** What a Msg needs from its client to answer a request. */
export interface Responder {
  respond(reply: string, correlation: number, payload: unknown, options?: { headers?: Record<string, string>; codec?: Codec<never> }): void;
  /** ACK (ok) or NACK a durable queue delivery that came on connection `link` (see `link`). */
  settle?(correlation: number, ok: boolean, reason: string | undefined, link: number): void;
  /** Counts the client's connections: a delivery is settled on the one it came on only (its id is that node's). */
  readonly link?: number;
}

/**
 * A received event. `data` is a view of the received bytes (no copy); keep
 * a copy (`new Uint8Array(data)`: in Node `data` may be a Buffer, whose
 * `slice()` is a view too) if you hold it for long and memory matters.
 */
export class Msg {
  readonly topic: string;
  readonly data: Uint8Array;
  /** Subscription id of a queue-group delivery, else 0. */
  readonly sid: number;
  /** Correlation id from the header (the request id of a request). */
  readonly correlation: number;
  private readonly ext: Extension | undefined;
  /** A durable queue delivery's connection (Responder.link) when it arrived. */
  private readonly link: number;

  constructor(
    private readonly frame: Frame,
    topic: string,
    ext: Extension | undefined,
    private readonly responder: Responder,
    private readonly codec: Codec | undefined,
  ) {
    this.topic = topic;
    this.data = frame.payload;
    this.sid = frame.sid;
    this.correlation = frame.correlation;
    this.ext = ext;
    this.link = this.sid !== 0 && frame.ackRequested ? (responder.link ?? 0) : 0;
  }

  /**
   * @internal This event, about to wait in a subscription's queue: with bytes
   * of its own when it is a small part of the read it arrived in (else the
   * queue would keep the whole read alive, up to 64 KiB, while its byte
   * bound counts only the event's own frame). A new Msg: the consumer never had this one.
   */
  own(): Msg {
    const f = this.frame;
    if (f.buf.buffer.byteLength < 2 * f.size) return this;
    // new Uint8Array(view) copies; a Node Buffer's slice() does not (it is subarray()).
    return new Msg(new Frame(new Uint8Array(f.bytes), 0, f.size), this.topic, this.ext, this.responder, this.codec);
  }

  /** @internal Bytes of the event's frame (header, topic, headers, payload): what a subscription's queue counts it as. */
  get size(): number {
    return this.frame.size;
  }

  /** Application headers, when the publisher set any. */
  get headers(): Record<string, string> | undefined {
    return this.ext?.headers;
  }
  /** Reply topic of a request; undefined for a plain event. */
  get reply(): string | undefined {
    return this.ext?.reply;
  }
  /** Origin of the event in the mesh: 16 hex digits (set by the publisher's node). */
  get origin(): string {
    return this.frame.origin;
  }
  /** Sequence number of the event at its origin. */
  get seq(): number {
    return this.frame.seq;
  }
  /** Where the event sits in its durable topic's history (durable topics only). */
  get position(): Position | undefined {
    return this.ext?.position;
  }
  /** A durable queue delivery that waits for ack() / nack(). */
  get needsAck(): boolean {
    return this.sid !== 0 && this.frame.ackRequested && !this.settled;
  }
  private settled = false;
  /** Completes a durable queue job (done automatically when a callback returns). */
  ack(): void {
    if (!this.needsAck) return;
    this.settled = true;
    this.responder.settle?.(this.correlation, true, undefined, this.link);
  }
  /** Fails a durable queue job: it is retried with backoff, then dead-lettered. */
  nack(reason?: unknown): void {
    if (!this.needsAck) return;
    this.settled = true;
    this.responder.settle?.(this.correlation, false, reason === undefined ? undefined : messageOf(reason), this.link);
  }
  /** Milliseconds since the epoch, stamped by the publisher's node. */
  get timestamp(): number {
    return this.frame.timestamp;
  }

  /** The payload as UTF-8 text; ClientError MB_ERR_CODEC when it is not. */
  string(): string {
    return StringCodec.decode(this.data);
  }
  /** The payload parsed as JSON; ClientError MB_ERR_CODEC when it is not. */
  json<T = unknown>(): T {
    return JsonCodec.decode(this.data) as T;
  }
  /** The payload decoded with the subscription's codec (or the client's default, JSON). */
  decoded<T = unknown>(): T {
    return viaCodec(() => (this.codec ?? JsonCodec).decode(this.data), 'decode') as T;
  }

  /**
   * Answers a request: publishes `payload` on the reply topic with the
   * request's correlation id. Returns false (nothing sent) when this event
   * is not a request.
   */
  respond(payload?: unknown, options?: { headers?: Record<string, string>; codec?: Codec<never> }): boolean {
    const reply = this.reply;
    if (!reply) return false;
    this.responder.respond(reply, this.correlation, payload, options);
    return true;
  }
}
