import { Flags, Frame, FrameType, SessionError, assertTopic, checkIngressExtension, encodeFrame, type TopicLimits } from '@meshbus/proto';
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
