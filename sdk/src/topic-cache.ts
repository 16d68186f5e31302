import { topicHash, utf8Length, utf8Write } from '@meshbus/proto';

/** A publish topic's UTF-8 bytes and header hash, computed once per topic string. */
export interface TopicBytes {
  readonly bytes: Uint8Array;
  readonly hash: number;
  /** The node topic-length limit this topic was last validated against (0: not yet). */
  validFor: number;
}

/** Distinct topics remembered; past this the cache starts over (a publisher of ever-new topics pays the encode, nothing more). */
const MAX_TOPICS = 4096;
const cache = new Map<string, TopicBytes>();

/** The cached bytes and hash of `topic` (a string). */
export function topicBytes(topic: string): TopicBytes {
  let e = cache.get(topic);
  if (e === undefined) {
    const bytes = new Uint8Array(utf8Length(topic));
    utf8Write(topic, bytes, 0);
    e = { bytes, hash: bytes.length > 0 ? topicHash(bytes) : 0, validFor: 0 };
    if (cache.size >= MAX_TOPICS) cache.clear();
    cache.set(topic, e);
  }
  return e;
}

/** The cached entry of `topic`, if any, without encoding it. */
export function peekTopicBytes(topic: string): TopicBytes | undefined {
  return cache.get(topic);
}
