import { asciiTopicHash, topicHash, utf8Encode, utf8Length, utf8Write } from '@meshbus/proto';
import { ClockCache } from './clock-cache.js';

/** A publish topic's UTF-8 length and header hash, computed once per topic string. */
export interface TopicBytes {
  /** UTF-8 byte length. */
  readonly length: number;
  /** FNV-1a of the UTF-8 bytes (proto topicHash). */
  readonly hash: number;
  /** The UTF-8 bytes; undefined for an ASCII topic not kept in the cache (its bytes are its char codes). */
  bytes: Uint8Array | undefined;
  /** The node topic-length limit this topic was last validated against (0: not yet). */
  validFor: number;
  /** A plain PUB's prefix, header and topic bytes, sealed for `headFor` payload bytes (sealed-head.ts); headFor -1: an entry the cache does not keep, never sealed. */
  head: Uint8Array | undefined;
  headFor: number;
}

/**
 * Distinct publish topics remembered, with second-chance replacement
 * (clock-cache.ts). An entry is about 45 B of cache slots, a 48 B entry and
 * its UTF-8 bytes in a Uint8Array (~180 B + the length, Node 20), plus the
 * topic string itself (held as the key): ~4.5 MB + strings at most for
 * 16,384 topics of 20 bytes; a Node publisher's sealed heads add ~130 B per
 * kept topic of 20 bytes (sealed-head.ts). A publisher cycling more topics than this
 * pays a miss per event: one pass over the string's char codes (hash and
 * ASCII check), one validation pass (event-checks.ts), the bytes written
 * from the char codes (no array made for a topic the cache does not keep).
 */
const MAX_TOPICS = 16384;
const cache = new ClockCache<string, TopicBytes>(MAX_TOPICS);

/**
 * The entry used last: an event's topic is looked up twice (validated where
 * the user calls, then encoded), and with thousands of topics in flight a
 * map lookup misses the CPU caches (8 % of a publisher cycling 10,000).
 */
let lastTopic: string | undefined;
let last: TopicBytes | undefined;
/** The topic peekTopicBytes did not find: validation follows, then topicBytes, which need not look again. */
let missed: string | undefined;

/** The cached length and hash of `topic` (a string), computed on a miss. */
export function topicBytes(topic: string): TopicBytes {
  if (topic === lastTopic) return last!;
  let e: TopicBytes | undefined;
  if (topic === missed) missed = undefined;
  else e = cache.get(topic);
  if (e === undefined) {
    e = measure(topic);
    // A reply topic is used once (it names one request): not worth an entry.
    // A kept entry keeps the bytes: copying them costs less than writing the char codes (~20 ns at 15 bytes).
    if (!topic.startsWith('_INBOX.') && cache.set(topic, e)) {
      if (e.bytes === undefined) e.bytes = utf8Encode(topic);
    } else e.headFor = -1; // not kept: no sealed head (sealed-head.ts), which would be made per event and thrown away
  }
  lastTopic = topic;
  return (last = e);
}

/** The cached entry of `topic`, if any, without computing it. */
export function peekTopicBytes(topic: string): TopicBytes | undefined {
  if (topic === lastTopic) return last;
  const e = cache.get(topic);
  if (e !== undefined) {
    lastTopic = topic;
    last = e;
  } else missed = topic;
  return e;
}

/** Writes the UTF-8 bytes of `topic` (described by `t`) at `buf[off]`. */
export function writeTopic(t: TopicBytes, topic: string, buf: Uint8Array, off: number): void {
  if (t.bytes !== undefined) buf.set(t.bytes, off);
  // An ASCII topic not kept: a byte per char code, no array to make.
  else for (let i = 0; i < t.length; i++) buf[off + i] = topic.charCodeAt(i);
}

/** Length and hash from the char codes when ASCII (no buffer); else from the encoded bytes. */
function measure(topic: string): TopicBytes {
  const h = asciiTopicHash(topic);
  if (h >= 0) return { length: topic.length, hash: topic.length > 0 ? h : 0, bytes: undefined, validFor: 0, head: undefined, headFor: 0 };
  const bytes = new Uint8Array(utf8Length(topic));
  utf8Write(topic, bytes, 0);
  return { length: bytes.length, hash: topicHash(bytes), bytes, validFor: 0, head: undefined, headFor: 0 };
}
