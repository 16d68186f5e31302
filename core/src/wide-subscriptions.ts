import { TopicTrie, forEachEntry, topicMatches } from '@meshbus/proto';
import { INBOX, TRACE, startsWithWildcard } from './auth/reserved-topics.js';
import type { OwnedPattern } from './owned-pattern.js';
import type { Subscriber } from './subscriber.js';

/**
 * Client subscriptions whose pattern starts with a wildcard (`>`, `*.…`),
 * held apart from the routing table's trie. Such a pattern matches every
 * reserved topic, but a reserved topic reaches a client only as its own
 * inbox (`_INBOX.<its client id>.…`) or as a trace record through a `_TRACE`
 * subscription of its own (ReservedFilter, SPEC 11.1): for those topics only
 * the inbox owner's wide subscriptions are looked at. In the one trie, every
 * request's reply (an `_INBOX` topic, never cached) visited every client's
 * wide subscriptions, to be dropped at delivery: one connection holding
 * 10,000 `>` cut a node's request/reply rate from 31,700/s to 4,500/s, five
 * such connections to 490/s.
 */
export class WideSubscriptions {
  private readonly trie = new TopicTrie<OwnedPattern>();
  /** The same, by the client id of their owner (the `<id>` of its `_INBOX.<id>.…` topics). */
  private readonly byClient = new Map<string, Set<OwnedPattern>>();

  /** Whether a subscription of `owner` to `pattern` belongs here: a client's, on a pattern starting with a wildcard. */
  static holds(owner: Subscriber, pattern: string): boolean {
    return owner.kind === 'client' && owner.clientId !== undefined && startsWithWildcard(pattern);
  }

  get size(): number {
    return this.trie.size;
  }

  /** Adds `sub`, one owner's subscriptions to one pattern (WideSubscriptions.holds); false when it was already there. */
  add(sub: OwnedPattern): boolean {
    if (!this.trie.add(sub.pattern, sub)) return false;
    const id = sub.owner.clientId!;
    let own = this.byClient.get(id);
    if (own === undefined) this.byClient.set(id, (own = new Set()));
    own.add(sub);
    return true;
  }

  /** Removes `sub`; false when it was not there. */
  remove(sub: OwnedPattern): boolean {
    if (!this.trie.remove(sub.pattern, sub)) return false;
    const id = sub.owner.clientId!;
    const own = this.byClient.get(id);
    if (own !== undefined && own.delete(sub) && own.size === 0) this.byClient.delete(id);
    return true;
  }

  /** Visits the subscriptions that may receive events on literal `topic`. */
  match(topic: string, visit: (sub: OwnedPattern) => void): void {
    if (this.trie.size === 0) return;
    if (topic.charCodeAt(0) !== 0x5f /* _ */) return this.trie.match(topic, visit);
    const dot = topic.indexOf('.');
    const first = dot < 0 ? topic : topic.slice(0, dot);
    // Trace records reach a connection through its `_TRACE` subscriptions (in the main trie), never through a wide one alone.
    if (first === TRACE) return;
    if (first !== INBOX) return this.trie.match(topic, visit);
    const end = topic.indexOf('.', dot + 1);
    const own = this.byClient.get(topic.slice(dot + 1, end < 0 ? topic.length : end));
    if (own === undefined) return;
    for (const sub of own) if (topicMatches(sub.pattern, topic)) visit(sub);
  }

  forEach(visit: (sub: OwnedPattern) => void): void {
    forEachEntry(this.trie, (_p, sub) => visit(sub));
  }
}
