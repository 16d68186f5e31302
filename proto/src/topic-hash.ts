/**
 * The topic hash carried in every header: 32-bit FNV-1a over the topic's
 * UTF-8 bytes. Cheap enough to compute on every publish and good enough for a
 * hash-table key; routing always confirms a hit against the topic bytes.
 */
export function topicHash(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * topicHash of an ASCII string's bytes (its char codes), without encoding
 * it; -1 when `s` has a char code ≥ 0x80 (then encode and use topicHash).
 */
export function asciiTopicHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}
