import { FIXED_SIZE, FrameType, HEADER_SIZE, OFF, applyCrcDelta, patchU32, writeHeader } from '@meshbus/proto';
import type { TopicBytes } from './topic-cache.js';

/**
 * The first bytes of a plain PUB (no extension block, flags, correlation or
 * stamped fields: what `publish(topic, payload)` sends) to a topic the
 * topic cache keeps: the 4-byte prefix, the 60-byte header with its CRC and
 * the topic bytes, `FIXED_SIZE + topic length` bytes made once per topic.
 * Such a frame differs from the last one to its topic only in its two
 * length fields, so a publisher copies these bytes instead of writing the
 * header's fields and checksumming them (about a third of a publish's
 * CPU: 260-300 ns per event against 145-235 with sealed heads, in-process,
 * bench/README.md "The publisher's header"); a payload of another length patches the two
 * fields and the CRC incrementally (proto header-patch.ts: 8 table
 * lookups). The result is byte for byte what `writeHeader` makes
 * (sdk/test/sealed-head.test.ts). Memory, measured after GC: ~130 B per
 * kept topic of 20 bytes, ~410 B at 256 (the default maxTopic), the topic
 * bytes held once (the entry's are a view of its head's): ~2.1 MB for the
 * 16,384 topics of 20 bytes topic-cache.ts keeps at most.
 *
 * Returns undefined for a topic the cache does not keep (a reply topic,
 * one past the cache's size: `headFor` -1): its entry is made again at its
 * next use, so its head would be made per event and thrown away (a
 * non-ASCII topic's was, at c32ec62). A kept entry always has its bytes;
 * the caller has refused a topic too long for the header's u16.
 */
export function sealedHead(t: TopicBytes, payloadLen: number): Uint8Array | undefined {
  if (t.headFor < 0) return undefined;
  let h = t.head;
  if (h === undefined) {
    h = t.head = new Uint8Array(FIXED_SIZE + t.length);
    h.set(t.bytes!, FIXED_SIZE);
    // The topic's bytes are held once: the entry's become a view of the head's (only its header part changes).
    t.bytes = h.subarray(FIXED_SIZE);
    writeHeader(h, 0, { type: FrameType.PUB, topicHash: t.hash, topicLen: t.length, payloadLen });
  } else if (t.headFor !== payloadLen) {
    applyCrcDelta(h, 0, patchU32(h, 0, OFF.LENGTH, HEADER_SIZE + t.length + payloadLen) ^ patchU32(h, 0, OFF.PAYLOAD_LEN, payloadLen));
  }
  t.headFor = payloadLen;
  return h;
}
