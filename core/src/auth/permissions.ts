import { DEFAULT_MAX_TOPIC, TopicTrie, copyBytes, equalBytesAt, type Frame } from '@meshbus/proto';
import type { TopicRules } from './permission-claim.js';
import { permissionRules, type PermissionRules } from './permission-claim.js';
import { isReservedTopic, startsWithWildcard } from './reserved-topics.js';

/**
 * True when every topic `pattern` can match is also matched by `cover`
 * (token by token: `>` covers one or more trailing tokens, `*` any one
 * token, a literal only itself).
 */
export function covers(cover: string, pattern: string): boolean {
  const c = cover.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < c.length; i++) {
    const ct = c[i]!;
    if (ct === '>') return i < p.length;
    if (i >= p.length) return false;
    const pt = p[i]!;
    if (pt === '>') return false;
    if (ct === '*') continue;
    if (ct !== pt) return false;
  }
  return c.length === p.length;
}

/** True when some topic matches both patterns `a` and `b`. */
export function overlaps(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    const s = x[i];
    const t = y[i];
    if (s === undefined || t === undefined) return s === t;
    if (s === '>' || t === '>') return true;
    if (s !== '*' && t !== '*' && s !== t) return false;
  }
}

/** The RuleSet key of absent rules (everything allowed). */
const NO_RULES = JSON.stringify([null, []]);

/** One side (publish or subscribe) of a client's permissions, compiled. */
class RuleSet {
  /** The rules as given: two RuleSets with the same key decide every pattern and topic alike. */
  readonly key: string;
  private readonly allow: string[] | undefined;
  private readonly deny: string[];
  private readonly allowTrie = new TopicTrie<true>();
  private readonly denyTrie = new TopicTrie<true>();

  constructor(rules: TopicRules | undefined) {
    this.allow = rules?.allow;
    this.deny = rules?.deny ?? [];
    this.key = JSON.stringify([this.allow ?? null, this.deny]);
    for (const p of this.allow ?? []) this.allowTrie.add(p, true);
    for (const p of this.deny) this.denyTrie.add(p, true);
  }

  /** A pattern named by an allow pattern that starts with a literal token (a wildcard-first `>` never counts) and not denied. */
  explicit(pattern: string): boolean {
    if (this.deny.some((d) => covers(d, pattern))) return false;
    return (this.allow ?? []).some((a) => a[0] !== '*' && a[0] !== '>' && covers(a, pattern));
  }

  /** A pattern entirely inside a deny pattern. */
  denied(pattern: string): boolean {
    return this.deny.some((d) => covers(d, pattern));
  }

  get hasDeny(): boolean {
    return this.deny.length > 0;
  }

  /**
   * Some topic `pattern` matches is denied. `wideSkipsReserved`: a pattern starting with a wildcard does
   * not reach reserved topics (`_INBOX`, `_TRACE`, `_DLQ`: a wide durable queue never takes them), so deny
   * rules under those prefixes do not count for it.
   */
  deniesPartOf(pattern: string, wideSkipsReserved = false): boolean {
    const skip = wideSkipsReserved && startsWithWildcard(pattern);
    return this.deny.some((d) => overlaps(d, pattern) && !(skip && isReservedTopic(d)));
  }

  /** A literal topic: allowed by some allow pattern (or no allow list) and no deny pattern. */
  topic(topic: string): boolean {
    if (this.deny.length > 0 && matchesAny(this.denyTrie, topic)) return false;
    return this.allow === undefined || matchesAny(this.allowTrie, topic);
  }

  /** A subscription pattern: covered by an allow pattern and not entirely inside a deny pattern. */
  pattern(pattern: string): boolean {
    if (this.deny.some((d) => covers(d, pattern))) return false;
    return this.allow === undefined || this.allow.some((a) => covers(a, pattern));
  }
}

function matchesAny(trie: TopicTrie<true>, topic: string): boolean {
  let hit = false;
  trie.match(topic, () => {
    hit = true;
  });
  return hit;
}

/**
 * A client's permissions from its token, checked on every PUB and SUB
 * (deny wins). A subscription that overlaps a denied pattern without being
 * inside it is accepted, and the denied topics are filtered out at delivery.
 */
export class Permissions {
  private readonly pub: RuleSet;
  private readonly sub: RuleSet;
  private pubDecisions: FrameDecisions | undefined;
  private subDecisions: FrameDecisions | undefined;

  /**
   * `rules` undefined: everything allowed. Otherwise checked here too
   * (permissionRules: SessionError MB_ERR_AUTH_FAILED), whoever built them:
   * a part this class would not read, such as a list where a map belongs,
   * would be no rule at all, and no rule allows everything.
   */
  constructor(rules: PermissionRules | undefined) {
    const r = rules === undefined ? undefined : permissionRules(rules);
    this.pub = new RuleSet(r?.publish);
    this.sub = new RuleSet(r?.subscribe);
  }

  canPublish(topic: string): boolean {
    return this.pub.topic(topic);
  }

  /** canPublish for a client's PUB or REQ, remembered per topic (FrameDecisions). */
  canPublishFrame(f: Frame): boolean {
    return (this.pubDecisions ??= new FrameDecisions((t) => this.pub.topic(t))).of(f);
  }

  /** canReceive for a delivery, remembered per topic (FrameDecisions). */
  canReceiveFrame(f: Frame): boolean {
    return (this.subDecisions ??= new FrameDecisions((t) => this.sub.topic(t))).of(f);
  }

  canSubscribe(pattern: string): boolean {
    return this.sub.pattern(pattern);
  }

  /**
   * True when `a` and `b` (undefined: no permissions claim, everything
   * allowed) decide every subscription alike: the same subscribe rules.
   */
  static sameSubscribeRules(a: Permissions | undefined, b: Permissions | undefined): boolean {
    return Permissions.subscribeRulesKey(a) === Permissions.subscribeRulesKey(b);
  }

  /** A key of `p`'s subscribe rules (undefined: none): equal keys decide every subscription alike. */
  static subscribeRulesKey(p: Permissions | undefined): string {
    return p?.sub.key ?? NO_RULES;
  }

  /**
   * True when the allow list names `pattern` explicitly, with a pattern whose
   * first token is literal: the opt-in for wide `_TRACE` subscriptions.
   */
  explicitlyAllowsSubscribe(pattern: string): boolean {
    return this.sub.explicit(pattern);
  }

  /** explicitlyAllowsSubscribe for publishing on `topic`: the opt-in for a keyed leaf's dead letters (cluster leaf-rules.ts). */
  explicitlyAllowsPublish(topic: string): boolean {
    return this.pub.explicit(topic);
  }

  /** True when a deny pattern covers `pattern` (whatever the allow list says). */
  deniesSubscribe(pattern: string): boolean {
    return this.sub.denied(pattern);
  }

  /**
   * True when some event a subscription to `pattern` would match may not be
   * received (a deny rule touches it): fine for a subscription, filtered at
   * delivery, but not for a durable queue, which keeps those events in
   * Redis for its members (durability.ts).
   */
  filtersSubscription(pattern: string): boolean {
    return this.sub.deniesPartOf(pattern, true);
  }

  /** True when deliveries must be filtered by topic (some subscribe pattern is denied). */
  get filtersDelivery(): boolean {
    return this.sub.hasDeny;
  }

  canReceive(topic: string): boolean {
    return this.sub.topic(topic);
  }
}

/** Decisions a connection remembers: it publishes or receives a few topics over and over. */
const DECISIONS = 64;
/**
 * Longest topic remembered, bytes. The publish check runs before the topic
 * length check (checkClientEvent), so a frame's topic may be up to 64 KiB
 * (anything maxFrameLength lets through) and refused only afterwards, without
 * closing the connection: keeping such topics let one client hold 64 x 64 KiB
 * per connection. Longer topics are decided each time.
 */
const KEPT_TOPIC = DEFAULT_MAX_TOPIC;

/**
 * A rule's answers for literal topics, keyed by a frame's topic bytes: a
 * repeated topic costs a map hit and a byte compare instead of a UTF-8
 * decode and two trie walks (~0.5–1 µs per event on this machine, more
 * than the rest of a node's work for a small event). The key is the
 * header's topic hash, which the client chose, so an entry is used only when
 * its bytes equal the frame's: a wrong hash can only miss. At most
 * DECISIONS entries of at most KEPT_TOPIC bytes per Permissions (per
 * token), dropped together when full; topics starting with `_` (reply
 * inboxes, new at every request) are decided each time and not kept. A refreshed token makes a new Permissions,
 * so no decision outlives the rules it was made under.
 */
class FrameDecisions {
  private readonly m = new Map<number, { bytes: Uint8Array; ok: boolean }>();

  constructor(private readonly decide: (topic: string) => boolean) {}

  of(f: Frame): boolean {
    const buf = f.buf;
    const start = f.topicStart;
    const len = f.topicLen;
    const key = f.topicHash & 0x3fffffff;
    const e = this.m.get(key);
    if (e !== undefined && e.bytes.length === len && equalBytesAt(e.bytes, buf, start)) return e.ok;
    const ok = this.decide(f.topic);
    if (buf[start] !== 0x5f /* _ */ && len <= KEPT_TOPIC) {
      if (this.m.size >= DECISIONS) this.m.clear();
      // A copy: a view would keep the whole input chunk (64 KiB) alive.
      this.m.set(key, { bytes: copyBytes(buf, start, start + len), ok });
    }
    return ok;
  }
}
