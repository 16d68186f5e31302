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
