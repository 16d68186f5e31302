import { Flags, Frame, FrameType, OFF, SessionError, assertTopic, checkIngressExtension, encodeFrame, readU16, resealHeader, writeU16, type TopicLimits } from '@meshbus/proto';
import type { EventSource, Subscriber } from './subscriber.js';

/** An event the node publishes itself (HTTP API, internal services). */
export interface LocalPublish {
  /** Application headers of the event. */
  headers?: Record<string, string>;
  /** Reply topic: makes the event a request (REQ). */
  reply?: string;
  correlation?: number;
  /** Who publishes, as routing sees it (never delivered its own event back unless it wants echo); default a node-internal publisher. */
  from?: Subscriber & EventSource;
  /**
   * Trace id, 16 random lowercase hex digits: the event carries the TRACE flag
   * and hop records go to `_TRACE.<trace>`. Any other id: no hop records.
   */
  trace?: string;
  /**
   * On a durable topic, ask the store's answer as a client's acked PUB does:
   * once Redis has the event (or refused it), its ACK (with the position) or
   * its NACK (the store's code) is sent to `from.send`. A plain topic's event
   * is delivered as without it (nothing is refused: MB_ERR_NOT_DURABLE is for
   * clients that asked for durability). The HTTP API's publish asks it.
   */
  answer?: boolean;
}

/**
 * The frame of an event published from inside the node (a REQ when
 * `o.reply` is set), held to a client's rules (HTTP callers are clients
 * too). Throws SessionError MB_ERR_PAYLOAD_TOO_LARGE, ProtocolError
 * MB_ERR_BAD_TOPIC or MB_ERR_BAD_EXTENSION.
 */
export function localFrame(topic: string, payload: Uint8Array, o: LocalPublish, limits: TopicLimits & { maxPayload: number }): Frame {
  const max = limits.maxPayload;
  if (payload.length > max) throw new SessionError('MB_ERR_PAYLOAD_TOO_LARGE', `${payload.length} bytes, limit ${max}`);
  assertTopic(topic, limits);
  const ext = o.headers !== undefined || o.reply !== undefined || o.trace !== undefined ? { headers: o.headers, reply: o.reply, trace: o.trace } : undefined;
  const type = o.reply !== undefined ? FrameType.REQ : FrameType.PUB;
  const flags = o.trace !== undefined ? Flags.TRACE : 0;
  const bytes = encodeFrame({ type, topic, payload, ext, flags, correlation: o.correlation, timestamp: Date.now() });
  const f = new Frame(bytes, 0, bytes.length);
  checkIngressExtension(f.extBytes, type === FrameType.REQ, 'client');
  return f;
}

/** Makes a local frame ask for its ACK/NACK (LocalPublish.answer): the ACK_REQUESTED flag set, the header resealed. */
export function askAnswer(f: Frame): void {
  const at = f.start + OFF.FLAGS;
  writeU16(f.buf, at, readU16(f.buf, at) | Flags.ACK_REQUESTED);
  resealHeader(f.buf, f.start);
}
