import { FrameType, topicProblem, utf8Length } from '@meshbus/proto';
import type { MeshNode, Subscription } from '@meshbus/core';
import { WEIGHT_UNIT, throttled, weightOf } from '@meshbus/core';
import { InterestLedger, keyOf, parseKey } from './interest-ledger.js';
import type { PeerLink } from './peer-link.js';
import { InterestOutbox, type InterestEntry } from './interest-outbox.js';
import { RESENT, marksResent } from './member-gone.js';
import { InterestPacing } from './interest-pacing.js';

/** Per link: what we announced to it (our ids, with the distance told) and what it announced to us (its ids → subscriptions). */
interface LinkInterest {
  announced: Map<string, number>;
  /** Distance announced per key (INTEREST add entry's 4th element). */
  told: Map<string, number>;
  announcedById: Map<number, string>;
  /**
   * Ids withdrawn from this link, newest last (at most MAX_RETIRED; an id is
   * reused on a link only after 2^31 − 1 others, never while held here): events the peer sent before it heard of the
   * withdrawal still name their queue group (a member that reached `max`).
   */
  retired: Map<number, string>;
  nextId: number;
  learned: Map<number, Subscription>;
  /** The weight of `learned` together (weightOf: what maxPeerInterest bounds). */
  weight: number;
  /** INTEREST owed to the link, sent at the end of the turn (flush). */
  outbox: InterestOutbox;
  /** A leaf link's pace of interest changes (interest-pacing.ts). */
  pacing?: InterestPacing;
  /** This node refused entries of the link for room since it last asked for them again (askAgain). */
  refused: boolean;
  /** When this node last asked the link to announce again (ms, performance.now()), and its pace then. */
  askedAt: number;
  askEvery: number;
  /** When this node last announced everything again at the link's request, and a timer for one held back. */
  resentAt: number;
  resendTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Interest propagation over peer links (INTEREST frames): announces to each
 * link the (pattern, queue group) keys it should route here, per the ledger
 * (local interest and leaves'; to a leaf, and in a partial mesh, also what
 * other links announced), and
 * turns what a link announces into subscriptions in the node's routing table
 * owned by that link.
 */
type Entry = InterestEntry;

/** Longest queue group name, as for a client's SUB `q` (SPEC 10.10). */
const MAX_QUEUE_NAME = 256;
/** Withdrawn ids remembered per link: far more than can be in flight in one interest-propagation window. */
const MAX_RETIRED = 4096;
/**
 * Entries refused for room (maxPeerInterest, the leaves' half) are asked for
 * again once there is room (INTEREST `{resync: true}`: the link announces all
 * it announced, under the same ids), at most every ASK_MIN ms per link, the
 * pace doubling up to ASK_MAX while refusals come back, and a link answers
 * one such request at most every ASK_MIN ms. Before, a refused entry was
 * dropped for good: a subscription made while a flood filled the bound never
 * got another node's events, even once the flood had gone (nats-server #138,
 * RELIABILITY.md "Thirty-third session").
 */
const ASK_MIN = 1000;
const ASK_MAX = 60_000;
/** How long after asking a link's answer is taken unpaced for the entries it repeats unchanged, ms. */
const ANSWER_MS = 10_000;

export class InterestExchange {
  private readonly ledger: InterestLedger;
  private readonly perLink = new Map<PeerLink, LinkInterest>();
  /**
   * The weight of the entries learned over leaf links, all leaves together. A hub announces its leaves'
   * interest to its peers as its own, and each peer takes at most maxPeerInterest
   * of weight from it: leaves get half of that, so they cannot crowd out (or, one
   * hostile leaf, take all of) what the hub's own clients need routed to them.
   */
  private leafEntries = 0;
  private unsubscribe: (() => void) | undefined;
  private flushQueued = false;
  /** Runs askAgain while a link has refused entries. */
  private askTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * partial: interest learned from one link is announced to the others (transitive).
   * maxPeerInterest: weight of the entries one link may announce, at most (ClusterOptions.maxPeerInterest;
   * an entry weighs as a client's SUB of its pattern and queue, subscription-weight.ts: counted one per
   * entry, a peer's 32-token patterns with long queue names held ~9 times what the bound was sized for).
   * leafInterestRate: interest changes a second a leaf link may make past a burst of half of maxPeerInterest
   * (ClusterOptions.leafInterestRate, interest-pacing.ts).
   */
  constructor(
    private readonly node: MeshNode,
    private readonly partial: boolean,
    private readonly maxPeerInterest: number,
    private readonly leafInterestRate = Infinity,
  ) {
    this.ledger = new InterestLedger(partial, (src) => {
      const l = src as PeerLink;
      return l.kind === 'gateway' ? (l.role === 'dialer' ? 'gateway-out' : 'gateway-in') : l.kind;
    });
  }

  /** Follows the node's local interest from now on, starting with what exists already. */
  start(): void {
    this.unsubscribe = this.node.table.onInterest((c) => this.changed(keyOf(c.pattern, c.queue), 'local', c.op === '+' ? 1 : -1));
    for (const k of this.node.table.localInterest()) this.ledger.change(keyOf(k.pattern, k.queue), 'local', 1);
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.askTimer !== undefined) clearTimeout(this.askTimer);
    this.askTimer = undefined;
    for (const li of this.perLink.values()) if (li.resendTimer !== undefined) clearTimeout(li.resendTimer);
  }

  /** A link is up: it gets a snapshot of the interest it should route here. */
  linkUp(link: PeerLink): void {
    const li: LinkInterest = {
      announced: new Map(),
      told: new Map(),
      announcedById: new Map(),
      retired: new Map(),
      nextId: 1,
      learned: new Map(),
      weight: 0,
      outbox: new InterestOutbox(),
      refused: false,
      askedAt: -Infinity,
      askEvery: ASK_MIN,
      resentAt: -Infinity,
    };
    if (link.kind === 'leaf' && this.leafInterestRate !== Infinity) {
      li.pacing = new InterestPacing(this.leafInterestRate, Math.max(this.leafInterestRate, this.maxPeerInterest >>> 1), performance.now());
    }
    this.perLink.set(link, li);
    li.outbox.snapshot();
    for (const key of this.ledger.keys()) {
      const dist = this.ledger.distanceFor(key, link);
      if (dist !== undefined) li.outbox.add(this.announce(link, key, dist));
    }
    // Now, not at the end of the turn: the snapshot is the first thing the link hears after the handshake.
    this.send(link, li);
  }

  /** A link is gone: what it announced leaves the routing table (and, transitively, the other links). */
  linkDown(link: PeerLink): void {
    const li = this.perLink.get(link);
    this.perLink.delete(link);
    if (!li) return;
    if (li.resendTimer !== undefined) clearTimeout(li.resendTimer);
    if (link.kind === 'leaf') this.leafEntries -= li.weight;
    for (const sub of li.learned.values()) this.node.table.remove(sub);
    for (const key of this.ledger.dropSource(link)) this.propagate(key, link);
  }

  /**
   * The queue group of the key we announced to `link` under `sid`, if any —
   * also for an id withdrawn recently (the peer may have sent events for it
   * before it heard: they still belong to that group).
   */
  queueFor(link: PeerLink, sid: number): { known: boolean; queue: string | undefined } {
    const li = this.perLink.get(link);
    const key = li?.announcedById.get(sid) ?? li?.retired.get(sid);
    return key === undefined ? { known: false, queue: undefined } : { known: true, queue: parseKey(key).queue };
  }

  private changed(key: string, source: 'local' | PeerLink, delta: number, dist?: number): void {
    this.ledger.change(key, source, delta, dist);
    this.propagate(key, source);
  }

  /**
   * Tells every link whose view of `key` changed (now wanted, no longer wanted,
   * or at another distance) by a change of `source`'s entries: only the links
   * `source` counts for are looked at (in a full mesh, a peer's interest
   * matters only to leaves and to regions that dialed this node, not to the
   * other peers).
   */
  private propagate(key: string, source: 'local' | PeerLink): void {
    for (const [link, li] of this.perLink) {
      if (!this.ledger.countsFor(source, link)) continue;
      const dist = this.ledger.distanceFor(key, link);
      const id = li.announced.get(key);
      if (dist !== undefined && (id === undefined || li.told.get(key) !== dist)) this.queue(link, li).add(this.announce(link, key, dist));
      else if (dist === undefined && id !== undefined) {
        li.announced.delete(key);
        li.told.delete(key);
        li.announcedById.delete(id);
        li.retired.set(id, key);
        if (li.retired.size > MAX_RETIRED) li.retired.delete(li.retired.keys().next().value!);
        this.queue(link, li).del(id);
      }
    }
  }

  /**
   * `link`'s outbox, with a flush of every link's outbox at the end of this
   * turn (a burst of changes is one frame per link), or before, when an event
   * is written to the link first (PeerLink.owedInterest).
   */
  private queue(link: PeerLink, li: LinkInterest): InterestOutbox {
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
    link.owedInterest ??= () => this.send(link, li);
    return li.outbox;
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    for (const [link, li] of this.perLink) if (!li.outbox.empty) this.send(link, li);
  };

  private send(link: PeerLink, li: LinkInterest): void {
    link.owedInterest = undefined;
    for (const body of li.outbox.take()) link.sendControl(FrameType.INTEREST, body);
  }

  /** An add entry for `key` (the id already announced for it, if any: the peer replaces the entry). */
  private announce(link: PeerLink, key: string, dist: number): Entry {
    const li = this.perLink.get(link)!;
    let id = li.announced.get(key);
    if (id === undefined) {
      // Ids stay below the re-sent marker (SPEC 10.3): after 2^31 − 1 of them on one link, again from 1, past those in use.
      do {
        id = li.nextId;
        li.nextId = id + 1 >= RESENT ? 1 : id + 1;
      } while (li.announcedById.has(id) || li.retired.has(id));
      li.announced.set(key, id);
      li.announcedById.set(id, key);
    }
    li.told.set(key, dist);
    const k = parseKey(key);
    return [id, k.pattern, k.queue ?? null, dist];
  }

  /** `link`'s entry `id` is withdrawn (or refused): it leaves the routing table and its weight the link's. */
  private forget(link: PeerLink, li: LinkInterest, id: number): void {
    const sub = li.learned.get(id);
    if (!sub) return;
    li.learned.delete(id);
    const w = this.weigh(sub.pattern, sub.queue);
    li.weight -= w;
    if (link.kind === 'leaf') this.leafEntries -= w;
    this.node.table.remove(sub);
    link.rules?.removed(sub);
    this.changed(keyOf(sub.pattern, sub.queue), link, -1);
  }

  /**
   * What a peer's entry weighs against maxPeerInterest: a subscription's
   * weight (subscription-weight.ts), plus, past this node's maxTopicLength
   * (a peer's entries may be as long as the protocol allows), its whole
   * length in weight units: the node holds the whole string, and counted at
   * half it, 60,000-byte patterns held 3.2 times the memory of short ones
   * at the same bound (a review: 289 against 89 MB).
   */
  private weigh(pattern: string, queue: string | undefined): number {
    const w = weightOf({ pattern, queue });
    // In bytes, as maxTopicLength is: by UTF-16 length, multi-byte patterns up to 3 times the limit weighed as short ones.
    const bytes = utf8Length(pattern);
    return bytes > this.node.options.maxTopicLength ? w + Math.ceil((2 * bytes) / WEIGHT_UNIT) : w;
  }

  /**
   * `link` asks for everything this node announced to it again (INTEREST
   * `{resync: true}`: it refused some for room, and has room now): sent as
   * adds under the same ids (what it holds already is unchanged there), at
   * most every ASK_MIN ms (a request meanwhile is answered then).
   */
  resyncAsked(link: PeerLink): void {
    const li = this.perLink.get(link);
    if (!li || li.resendTimer !== undefined) return;
    const wait = li.resentAt + ASK_MIN - performance.now();
    if (wait <= 0) return this.resend(link, li);
    li.resendTimer = setTimeout(() => {
      li.resendTimer = undefined;
      if (this.perLink.get(link) === li) this.resend(link, li);
    }, wait);
  }

  private resend(link: PeerLink, li: LinkInterest): void {
    li.resentAt = performance.now();
    const out = this.queue(link, li);
    for (const key of li.announced.keys()) out.add(this.announce(link, key, li.told.get(key) ?? 1));
  }

  /** Entries of `link` were refused for room: asked for again once there is room (askAgain). */
  private refusedForRoom(li: LinkInterest): void {
    li.refused = true;
    if (this.askTimer === undefined) this.askLater();
  }

  private askLater(): void {
    this.askTimer = setTimeout(this.askAgain, ASK_MIN);
    this.askTimer.unref?.();
  }

  /** Asks each link whose entries were refused, and that has room now, to announce again (at its pace); runs while any waits. */
  private readonly askAgain = (): void => {
    this.askTimer = undefined;
    const now = performance.now();
    let waiting = false;
    for (const [link, li] of this.perLink) {
      if (!li.refused) continue;
      const room = li.weight < this.maxPeerInterest && (link.kind !== 'leaf' || this.leafEntries < this.maxPeerInterest >>> 1);
      if (!room || now - li.askedAt < li.askEvery) {
        waiting = true;
        continue;
      }
      // Refused again soon after the last request: ask less often (a flood that keeps the bound full).
      li.askEvery = now - li.askedAt <= 2 * li.askEvery ? Math.min(2 * li.askEvery, ASK_MAX) : ASK_MIN;
      li.askedAt = now;
      li.refused = false;
      link.sendControl(FrameType.INTEREST, { resync: true });
    }
    if (waiting) this.askLater();
  };

  /** An INTEREST frame from `link`: a snapshot, removals and additions of its subscriptions. */
  received(link: PeerLink, body: Record<string, unknown>): void {
    const li = this.perLink.get(link);
    if (!li) return;
    const leaf = link.kind === 'leaf';
    const marks = marksResent(link);
    // A partial mesh passes queue copies on: its peers' members are ranked by distance (RoutingTable.pick).
    const ranked = this.partial && link.kind === 'peer';
    const dels = Array.isArray(body.del) ? body.del : [];
    const adds = Array.isArray(body.add) ? body.add : [];
    const now = performance.now();
    // Entries the link announces again unchanged, or that are refused again for room, while answering this node's own request
    // (askAgain) cost it little and are not charged to its pace: a leaf's whole answer held its input, events too, for seconds.
    const answering = now - li.askedAt < ANSWER_MS;
    let unchanged = 0;
    const snapped = body.snap === true ? li.learned.size : 0;
    if (body.snap === true) {
      for (const id of [...li.learned.keys()]) this.forget(link, li, id);
    }
    for (const id of dels) this.forget(link, li, id as number);
    let bad = 0;
    let badPattern: string | undefined;
    let badPatterns = 0;
    let full = 0;
    let leavesFull = 0;
    let denied = 0;
    let deniedPattern: string | undefined;
    for (const entry of adds) {
      if (!Array.isArray(entry)) continue;
      const [id, pattern, queue, distance] = entry as [unknown, unknown, unknown, unknown];
      // A node that marks re-sent copies names its ids below the marker: one above would read as a marked copy's.
      if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id > (marks ? RESENT - 1 : 0xffffffff) || typeof pattern !== 'string') continue;
      // Links to the subscriber; an entry without one (or a nonsense one) is one link away.
      const dist = typeof distance === 'number' && Number.isInteger(distance) && distance >= 1 && distance <= 255 ? distance : 1;
      // Within the protocol's length, as a peer's events are (node.ts forwardedIngress): the node where the
      // subscriber is checked its own limit, and long patterns weigh more (maxPeerInterest). Before, a leaf's
      // 305-byte pattern under a hub's default 256 was dropped, silently: its events never came.
      const problem = topicProblem(pattern, true, { maxTopicLength: 0xffff, maxTopicDepth: this.node.options.maxTopicDepth });
      if (problem !== undefined) {
        badPatterns++;
        badPattern ??= problem;
        continue;
      }
      // A keyed leaf's subscribe rules and reserved topics (leaf-rules.ts): one ERROR per frame below.
      if (link.rules?.maySubscribe(pattern) === false) {
        denied++;
        deniedPattern ??= pattern;
        continue;
      }
      // The same bound as a client's SUB `q` (SPEC 10.10).
      if (typeof queue === 'string' && queue.length > MAX_QUEUE_NAME) {
        bad++;
        continue;
      }
      const q = typeof queue === 'string' && queue.length > 0 ? queue : undefined;
      const old = li.learned.get(id);
      const same = old !== undefined && old.pattern === pattern && old.queue === q;
      // What the entry weighs more than the one it replaces (none for the same one at another distance).
      const more = same ? 0 : this.weigh(pattern, q) - (old === undefined ? 0 : this.weigh(old.pattern, old.queue));
      if (more > 0 && (li.weight + more > this.maxPeerInterest || (leaf && this.leafEntries + more > this.maxPeerInterest >>> 1))) {
        if (li.weight + more > this.maxPeerInterest) full++;
        else leavesFull++;
        if (old === undefined) unchanged++;
        // A refused replacement ends the entry it replaced: the peer no longer has it.
        this.forget(link, li, id);
        continue;
      }
      if (same) {
        if (old.distance === undefined || old.distance === dist) unchanged++;
        // The same entry at another distance: in a partial mesh a queue member's rank changes (cached receivers
        // of its topics dropped, as for any change of the table), else the routing table is unchanged.
        if (ranked && q !== undefined && old.distance !== dist) this.node.table.distanceChanged(old, dist);
        this.changed(keyOf(pattern, q), link, 0, dist);
        continue;
      }
      if (old) {
        // Its weight stays counted: the new entry's is `more` on top.
        this.node.table.remove(old);
        link.rules?.removed(old);
        this.changed(keyOf(old.pattern, old.queue), link, -1);
      }
      const sub: Subscription = { sid: id, pattern, queue: q, owner: link, slow: 'drop', ...(ranked && q !== undefined ? { distance: dist } : {}) };
      li.weight += more;
      if (leaf) this.leafEntries += more;
      li.learned.set(id, sub);
      this.node.table.add(sub);
      link.rules?.added(sub);
      // Recorded in every mode: a leaf hears what peers want (what they tell a peer is the ledger's rule).
      this.changed(keyOf(pattern, q), link, 1, dist);
    }
    // One ERROR per frame and kind, not one per entry: a flood is not answered in kind.
    if (badPatterns > 0) {
      throttled(this.node.logger).warn({ peer: link.peerId, refused: badPatterns, problem: badPattern?.slice(0, 200) }, 'peer interest with an invalid pattern refused', 'invalid interest pattern', link.peerId);
      link.sendError('MB_ERR_BAD_TOPIC', 0, `${badPatterns} interest entries refused: ${badPattern!.slice(0, 200)}`);
    }
    if (denied > 0) {
      throttled(this.node.logger).warn({ leaf: link.peerId, refused: denied, pattern: deniedPattern!.slice(0, 200) }, 'leaf interest outside its subscribe rules refused', 'leaf subscribe denied', link.peerId);
      link.sendError('MB_ERR_PERMISSION_DENIED', 0, `${denied} interest entries refused: subscribe to "${deniedPattern!.slice(0, 200)}" (this hub's leafPermissions)`);
    }
    if (bad > 0) {
      throttled(this.node.logger).warn({ peer: link.peerId, refused: bad }, 'peer interest with a queue name over 256 characters refused', 'long queue name', link.peerId);
      link.sendError('MB_ERR_BAD_BODY', 0, `${bad} interest entries refused: queue name over ${MAX_QUEUE_NAME} characters`);
    }
    // What this frame cost: a leaf past its pace waits before its next one (nothing dropped).
    const wait = li.pacing?.charge(snapped + dels.length + adds.length - (answering ? unchanged : 0), now) ?? 0;
    if (wait > 0) link.holdInput(wait);
    if (full + leavesFull > 0) this.refusedForRoom(li);
    if (full > 0) {
      throttled(this.node.logger).warn({ peer: link.peerId, refused: full, maxPeerInterest: this.maxPeerInterest }, 'peer interest past maxPeerInterest refused', 'interest full', link.peerId);
      link.sendError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', 0, `${full} interest entries refused: this link's ${li.learned.size} already weigh ${li.weight} of maxPeerInterest ${this.maxPeerInterest} (entries count by weight)`);
    }
    if (leavesFull > 0) {
      throttled(this.node.logger).warn({ leaf: link.peerId, refused: leavesFull, leafEntries: this.leafEntries }, 'leaf interest past half of maxPeerInterest (all leaves together) refused', 'leaf interest full', link.peerId);
      link.sendError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', 0, `${leavesFull} interest entries refused: this hub's leaves' entries already weigh ${this.leafEntries} together (half of maxPeerInterest, by weight)`);
    }
  }
}
