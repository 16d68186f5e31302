import { MAX_EXT, assertHeaderName, assertTopic, assertWellFormed, encodeExtension, errorFromCode, isTraceId, utf8Length, type Extension } from '@meshbus/proto';
import { peekTopicBytes, topicBytes } from './topic-cache.js';
import { invalid } from './errors.js';

/**
 * Bytes kept free in the extension-size check for the reply topic of a
 * request (`_INBOX.<client id>.<n>.<32 hex token>`), whatever the node: so a request that
 * passes the check offline also fits once the inbox is known.
 */
const REPLY_RESERVE = 128;

/** The node's limits an event is checked against (the last node's while offline). */
export interface EventLimits {
  maxTopic: number;
  maxPayload: number;
}

/**
 * Everything that could make an event unsendable, checked where the user
 * calls (publish, request, respond; and again for an outbox entry on the
 * node it is flushed to): the topic (ProtocolError MB_ERR_BAD_TOPIC, which
 * includes a lone surrogate), the payload size against the node's limit
 * (SessionError MB_ERR_PAYLOAD_TOO_LARGE), header names and values
 * (strings, well-formed, no `__proto__` name), the trace id, and the size of
 * the extension block they make (ClientError MB_ERR_INVALID_ARGUMENT).
 */
export function checkEvent(
  limits: EventLimits,
  topic: string,
  data: Uint8Array,
  headers: Record<string, string> | undefined,
  trace: string | undefined,
  request: boolean,
): void {
  const max = limits.maxTopic;
  if (typeof topic !== 'string') assertTopic(topic, { maxTopicLength: max });
  else {
    // Validated once per topic string (and node limit), not on every publish.
    // Validated before it is encoded: a lone surrogate is a bad topic, not an encoding failure.
    const t = peekTopicBytes(topic);
    if (t === undefined || t.validFor !== max) {
      assertTopic(topic, { maxTopicLength: max });
      topicBytes(topic).validFor = max;
    }
  }
  if (data.length > limits.maxPayload) {
    throw errorFromCode('MB_ERR_PAYLOAD_TOO_LARGE', `${data.length} bytes, the node accepts at most ${limits.maxPayload}`);
  }
  // Nodes accept only random 16-hex trace ids (SPEC 10.9): hop records go to _TRACE.<id>, to the connection that used the id first on its node.
  if (trace !== undefined && (typeof trace !== 'string' || !isTraceId(trace))) {
    throw invalid(`trace id "${String(trace)}" must be 16 lowercase hex digits (random)`);
  }
  if (headers === undefined) return;
  // An upper bound of the block's msgpack size; only a block that might not fit is encoded to know.
  let bound = 16 + (trace !== undefined ? 70 : 0) + (request ? REPLY_RESERVE : 0);
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw invalid('headers must be an object of strings');
  for (const k of Object.keys(headers)) {
    const v = headers[k];
    if (typeof v !== 'string') throw invalid(`header "${k}" must be a string`);
    assertHeaderName(k);
    assertWellFormed(v, `header "${k}"`);
    bound += utf8Length(k) + utf8Length(v) + 10;
  }
  if (bound > MAX_EXT) {
    const ext: Extension = { headers };
    if (trace !== undefined) ext.trace = trace;
    if (request) ext.reply = 'x'.repeat(REPLY_RESERVE);
    encodeExtension(ext);
  }
}
