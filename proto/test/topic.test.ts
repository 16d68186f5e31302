import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertProperty } from '@meshbus/testkit/property';
import { assertPattern, assertTopic, hasWildcard, topicMatches, topicProblem } from '../src/topic.js';
import { TopicTrie, forEachEntry } from '../src/topic-trie.js';
import { ProtocolError } from '../src/errors.js';

describe('topic validation', () => {
  it('a lone surrogate (a name cut inside a surrogate pair) is a bad topic; a whole pair is fine', () => {
    for (const t of ['a.\uD83D', 'a.\uDE00', '\uD83Dx.b', 'a.b\uDC00c']) {
      expect(topicProblem(t, false), JSON.stringify(t)).toMatch(/lone surrogate/);
      expect(() => assertTopic(t)).toThrow(/lone surrogate/);
      expect(() => assertPattern(t)).toThrow(/lone surrogate/);
    }
    expect(topicProblem('a.\uD83D\uDE00', false)).toBeUndefined();
    expect(topicProblem('\uFEFFdemo.x', false)).toBeUndefined();
  });
  it('accepts literal topics and patterns', () => {
    for (const t of ['a', 'a.b.c', 'orders.eu-west_1.created', '_INBOX.0123.1', 'café.温度', 'a'.repeat(256)]) {
      expect(topicProblem(t, false), t).toBeUndefined();
      expect(topicProblem(t, true), t).toBeUndefined();
    }
    for (const p of ['*', '>', 'a.*', '*.b', 'a.>', '*.*.>', 'a.*.c.>']) expect(topicProblem(p, true), p).toBeUndefined();
  });
  it('rejects wildcards in publish topics', () => {
    for (const t of ['*', '>', 'a.*', 'a.>', '*.b']) expect(topicProblem(t, false), t).toMatch(/wildcard/);
  });
  it('rejects empty topics and tokens, whitespace and control characters', () => {
    for (const t of ['', '.', 'a.', '.a', 'a..b', 'a b', 'a\tb', 'a\nb', 'a\u007fb', 'a\u0000b']) {
      expect(topicProblem(t, true), JSON.stringify(t)).toBeDefined();
    }
  });
  it('rejects partial-token wildcards and > not last', () => {
    for (const p of ['a*', '*a', 'a.b*', 'a.>b', '>.a', 'a.>.b', '**', '>>']) expect(topicProblem(p, true), p).toBeDefined();
  });
  it('enforces length (bytes, not chars) and depth limits, configurable', () => {
    expect(topicProblem('a'.repeat(257), false)).toMatch(/longer/);
    expect(topicProblem('é'.repeat(129), false)).toMatch(/longer/); // 258 bytes
    expect(topicProblem('é'.repeat(128), false)).toBeUndefined(); // 256 bytes
    expect(topicProblem(Array(32).fill('a').join('.'), false)).toBeUndefined();
    expect(topicProblem(Array(33).fill('a').join('.'), false)).toMatch(/deeper/);
    expect(topicProblem('a.b.c', false, { maxTopicDepth: 2 })).toMatch(/deeper/);
    expect(topicProblem('abcdef', false, { maxTopicLength: 5 })).toMatch(/longer/);
  });
  it('assertTopic / assertPattern throw MB_ERR_BAD_TOPIC', () => {
    expect(() => assertTopic('a.*')).toThrow(ProtocolError);
    try {
      assertPattern('a..b');
    } catch (e) {
      expect((e as ProtocolError).code).toBe('MB_ERR_BAD_TOPIC');
      expect((e as ProtocolError).num).toBe(1009);
    }
    expect(() => assertPattern('a.*')).not.toThrow();
  });
  it('topicMatches and hasWildcard', () => {
    const t: Array<[string, string, boolean]> = [
      ['a.b', 'a.b', true],
      ['a.b', 'a.c', false],
      ['a.*', 'a.b', true],
      ['a.*', 'a', false],
      ['a.*', 'a.b.c', false],
      ['a.>', 'a.b', true],
      ['a.>', 'a.b.c', true],
      ['a.>', 'a', false],
      ['>', 'a', true],
      ['*', 'a.b', false],
      ['*.b.>', 'x.b.y.z', true],
    ];
    for (const [p, topic, m] of t) expect(topicMatches(p, topic), `${p} ~ ${topic}`).toBe(m);
    for (const p of ['*', '>', 'a.*', '*.a', 'a.*.b', 'a.>']) expect(hasWildcard(p), p).toBe(true);
    for (const p of ['a', 'a.b', 'a*b', '_INBOX.x']) expect(hasWildcard(p), p).toBe(false);
  });

  /** The definition, token by token over split arrays (what topicMatches computes in place). */
  const byTokens = (pattern: string, topic: string): boolean => {
    const p = pattern.split('.');
    const t = topic.split('.');
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '>') return t.length > i;
      if (i >= t.length) return false;
      if (p[i] !== '*' && p[i] !== t[i]) return false;
    }
    return p.length === t.length;
  };

  it('property: topicMatches (in place) agrees with the token-by-token definition', () => {
    const tok = fc.constantFrom('a', 'b', 'ab', 'ba', 'é', '');
    const patTok = fc.oneof(tok, fc.constant('*'), fc.constant('>'));
    assertProperty(
      fc.property(fc.array(patTok, { minLength: 1, maxLength: 5 }), fc.array(tok, { minLength: 1, maxLength: 6 }), (p, t) => {
        const pattern = p.join('.');
        const topic = t.join('.');
        expect(topicMatches(pattern, topic), `${pattern} ~ ${topic}`).toBe(byTokens(pattern, topic));
      }),
      { numRuns: 2000 },
    );
    for (const [p, topic] of [['a.b', 'a.bc'], ['a.bc', 'a.b'], ['ab', 'a'], ['a', 'ab'], ['*', ''], ['a.>', 'a.'], ['a.*.c', 'a..c']] as const)
      expect(topicMatches(p, topic), `${p} ~ ${topic}`).toBe(byTokens(p, topic));
  });
});

describe('TopicTrie', () => {
  const collect = <T extends NonNullable<unknown>>(trie: TopicTrie<T>, topic: string): T[] => {
    const out: T[] = [];
    trie.match(topic, (v) => out.push(v));
    return out.sort();
  };

  it('matches literals and wildcards', () => {
    const t = new TopicTrie<string>();
    t.add('a.b', 'lit');
    t.add('a.*', 'star');
    t.add('a.>', 'rest');
    t.add('>', 'all');
    t.add('*.b', 'sb');
    expect(collect(t, 'a.b')).toEqual(['all', 'lit', 'rest', 'sb', 'star']);
    expect(collect(t, 'a')).toEqual(['all']);
    expect(collect(t, 'a.b.c')).toEqual(['all', 'rest']);
    expect(collect(t, 'x.b')).toEqual(['all', 'sb']);
    expect(t.size).toBe(5);
  });

  it('add is idempotent per value, values by identity; remove returns false when absent', () => {
    const t = new TopicTrie<object>();
    const a = {};
    expect(t.add('x', a)).toBe(true);
    expect(t.add('x', a)).toBe(false);
    expect(t.add('x', {})).toBe(true);
    expect(t.size).toBe(2);
    expect(t.remove('x', {})).toBe(false);
    expect(t.remove('y', a)).toBe(false);
    expect(t.remove('x', a)).toBe(true);
    expect(t.remove('x', a)).toBe(false);
    expect(t.size).toBe(1);
  });

  it('a last token holds its values as themselves, no node (issue #17: 56 B per subscribed pattern) and no Map (issue #15: ~180 B); a node is made when a pattern goes on, and a Map at its first child', () => {
    const t = new TopicTrie<number>();
    t.add('a.b', 1);
    type Node = { children: Map<string, Node | number> | undefined; here: unknown };
    const a = (t as unknown as { root: Node }).root.children!.get('a') as Node;
    expect(a.children!.get('b')).toBe(1);
    t.add('a.b.c', 2);
    const b = a.children!.get('b') as Node;
    expect(b.here).toBe(1);
    expect(b.children!.get('c')).toBe(2);
    const seen: number[] = [];
    t.match('a.b', (v) => seen.push(v));
    t.match('a.b.c', (v) => seen.push(v));
    t.match('a.b.c.d', (v) => seen.push(v));
    t.match('a', (v) => seen.push(v));
    expect(seen).toEqual([1, 2]);
    // A pattern that would go on past a last token's values is not there.
    expect(t.remove('a.b.c.d', 2)).toBe(false);
    expect(t.remove('a.b.c', 1)).toBe(false);
    expect(t.remove('a.b.c', 2)).toBe(true);
    expect(t.remove('a.b', 1)).toBe(true);
    expect((t as unknown as { root: Node }).root.children).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('a value alone at a place is held as itself, not in a one-value Set (~150 B each: a node holds one per subscribed pattern); values that are Sets stay values', () => {
    type Node = { children: Map<string, Node> | undefined; here: unknown; rest: unknown };
    const t = new TopicTrie<Set<number>>();
    const [s1, s2, s3] = [new Set([1]), new Set([2]), new Set<number>()];
    t.add('a.b', s1);
    t.add('a.>', s3);
    const a = (t as unknown as { root: Node }).root.children!.get('a')!;
    expect(a.children!.get('b')).toBe(s1); // a last token's one value, as itself
    expect(a.rest).toBe(s3);
    t.add('a.b', s2);
    t.add('a.b', s3);
    expect(collect(t, 'a.b').length).toBe(4);
    expect(t.remove('a.b', s2)).toBe(true);
    expect(t.remove('a.b', s2)).toBe(false);
    expect(t.remove('a.b', s1)).toBe(true);
    const seen: Array<Set<number>> = [];
    t.match('a.b', (v) => seen.push(v));
    expect(seen).toEqual([s3, s3]);
    expect(t.remove('a.b', s3)).toBe(true);
    expect(t.remove('a.>', s3)).toBe(true);
    expect(t.size).toBe(0);
  });

  it('a value removed during a visit is not visited after it (a visitor that unsubscribes)', () => {
    const t = new TopicTrie<string>();
    for (const v of ['a', 'b', 'c']) t.add('x.y', v);
    t.add('p.>', 'a');
    t.add('p.>', 'b');
    const seen: string[] = [];
    t.match('x.y', (v) => {
      seen.push(v);
      if (v === 'a') for (const w of ['a', 'c', 'b']) t.remove('x.y', w);
    });
    expect(seen).toEqual(['a']);
    const listed: string[] = [];
    forEachEntry(t, (_, v) => {
      listed.push(v);
      t.remove('p.>', 'a');
      t.remove('p.>', 'b');
    });
    expect(listed).toEqual(['a']);
  });

  it("a node whose last child is pruned holds no emptied Map of children", () => {
    type Node = { children: Map<string, Node> | undefined };
    const t = new TopicTrie<number>();
    t.add('a.b', 1);
    t.add('a.b.c', 2);
    const b = (t as unknown as { root: Node }).root.children!.get('a')!.children!.get('b')!;
    t.remove('a.b.c', 2);
    expect(b.children).toBeUndefined();
    expect(collect(t, 'a.b')).toEqual([1]);
    t.add('a.b.c', 3);
    t.add('a.b.c', 4);
    t.remove('a.b.c', 3);
    t.remove('a.b.c', 4);
    expect(b.children).toBeUndefined();
    expect(collect(t, 'a.b')).toEqual([1]);
  });

  it('removal prunes empty nodes and changes the version', () => {
    const t = new TopicTrie<number>();
    const v0 = t.version;
    t.add('a.b.c.d', 1);
    t.add('a.*.>', 2);
    expect(t.version).not.toBe(v0);
    t.remove('a.b.c.d', 1);
    t.remove('a.*.>', 2);
    expect(t.size).toBe(0);
    const root = (t as unknown as { root: { children: Map<string, unknown> | undefined; star: unknown } }).root;
    expect(root.children?.size ?? 0).toBe(0);
    expect(root.star).toBeUndefined();
    const entries: string[] = [];
    forEachEntry(t, (p) => entries.push(p));
    expect(entries).toEqual([]);
  });

  it('forEachEntry lists every (pattern, value)', () => {
    const t = new TopicTrie<number>();
    const pats = ['a', 'a.b', '*.c', 'a.>', '>', '*'];
    pats.forEach((p, i) => t.add(p, i));
    const seen: Array<[string, number]> = [];
    forEachEntry(t, (p, v) => seen.push([p, v]));
    expect(seen.sort((x, y) => x[1] - y[1])).toEqual(pats.map((p, i) => [p, i]));
  });

  const tok = fc.constantFrom('a', 'b', 'c');
  const patArb = fc
    .tuple(fc.array(fc.oneof(tok, fc.constant('*')), { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([ts, rest]) => (rest ? [...ts.slice(0, -1), '>'] : ts).join('.'));
  const topicArb = fc.array(tok, { minLength: 1, maxLength: 5 }).map((ts) => ts.join('.'));

  it('property: match agrees with topicMatches, through adds and removes', () => {
    assertProperty(
      fc.property(
        fc.array(fc.tuple(patArb, fc.nat({ max: 5 }), fc.boolean()), { maxLength: 40 }),
        fc.array(topicArb, { minLength: 1, maxLength: 10 }),
        (ops, topics) => {
          const trie = new TopicTrie<number>();
          const model = new Map<string, Set<number>>();
          for (const [p, v, add] of ops) {
            const set = model.get(p) ?? new Set();
            const had = set.has(v);
            if (add) {
              expect(trie.add(p, v)).toBe(!had);
              set.add(v);
            } else {
              expect(trie.remove(p, v)).toBe(had);
              set.delete(v);
            }
            model.set(p, set);
          }
          let n = 0;
          for (const s of model.values()) n += s.size;
          expect(trie.size).toBe(n);
          for (const topic of topics) {
            const want: string[] = [];
            for (const [p, s] of model) if (topicMatches(p, topic)) for (const v of s) want.push(`${p}#${v}`);
            const byValue = new Map<number, number>();
            trie.match(topic, (v) => byValue.set(v, (byValue.get(v) ?? 0) + 1));
            // Each value is visited once per matching pattern.
            const wantCount = new Map<number, number>();
            for (const w of want) {
              const v = Number(w.split('#')[1]);
              wantCount.set(v, (wantCount.get(v) ?? 0) + 1);
            }
            expect(byValue).toEqual(wantCount);
          }
          // Removing everything leaves an empty trie.
          for (const [p, s] of model) for (const v of s) expect(trie.remove(p, v)).toBe(true);
          expect(trie.size).toBe(0);
          const root = (trie as unknown as { root: { isEmpty(): boolean } }).root;
          expect(root.isEmpty()).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
