import { expect, it } from 'vitest';
import fc from 'fast-check';
import { topicMatches } from '@meshbus/proto';
import { TopicIndex } from '../src/topic-index.js';

const tok = fc.constantFrom('a', 'b', 'c', 'dd');
const topic = fc.array(tok, { minLength: 1, maxLength: 4 }).map((t) => t.join('.'));
const pattern = fc
  .tuple(fc.array(fc.oneof(tok, fc.constant('*')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([ts, rest]) => (rest ? [...ts.slice(0, -1), '>'] : ts).join('.'));

it('property: through any sets and deletes, a pattern finds exactly the topics it matches', () => {
  const op = fc.tuple(fc.boolean(), topic, pattern);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const index = new TopicIndex<string>();
      const held = new Set<string>();
      for (const [add, t, p] of ops) {
        if (add) {
          index.set(t, t);
          held.add(t);
        } else {
          index.delete(t, t);
          held.delete(t);
        }
        const found = index.match(p, 10_000);
        expect(new Set(found), p).toEqual(new Set([...held].filter((h) => topicMatches(p, h))));
        expect(found!.length, p).toBe(new Set(found).size);
      }
    }),
    { numRuns: 300 },
  );
});

it('delete removes only the value given, and a search over its bound answers undefined', () => {
  const index = new TopicIndex<number>();
  for (let i = 0; i < 100; i++) index.set(`t.${i}`, i);
  index.delete('t.5', 6);
  expect(index.match('t.5', 10)).toEqual([5]);
  index.delete('t.5', 5);
  expect(index.match('t.5', 10)).toEqual([]);
  expect(index.match('t.*', 50)).toBeUndefined();
  expect(index.match('t.*', 200)).toHaveLength(99);
  expect(index.match('>', 200)).toHaveLength(99);
});
