import { ConfigError, DeliveryPolicy, INBOX, Permissions, isDeadLetterTopicAt, reservedSubscribeProblem, throttled, type Logger, type Subscription } from '@meshbus/core';
import { FrameType, encodeFrame, type Frame } from '@meshbus/proto';
import { CHECKPOINT, SentCopies } from './sent-copies.js';

/** Publish and subscribe rules, as in a client token's `permissions` claim (core README "Permissions"). */
export interface LeafPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

/**
 * A hub's rules for a leaf that proves a leaf key (cluster/README.md "Leaf
 * nodes"): the node's reserved topics as for a client (its inboxes only:
 * such a leaf's client ids start with its node id, core
 * `nodeIdInClientIds`; one trace id at a time), and the publish and
 * subscribe rules of its key label (ClusterOptions.leafPermissions, `'*'`
 * for the labels without their own), as NATS applies a leaf connection's
 * user permissions. A subscription that only overlaps a denied pattern, or
 * starts with a wildcard, is kept and what it may not see is filtered out at
 * delivery, as for a client (core DeliveryPolicy). Without rules for its
 * label a keyed leaf may do what a client without a token may.
 */
export class LeafRules {
  /** Events of the leaf dropped as outside its publish rules. */
  denied = 0;
  private toldAt = -Infinity;
  /** Its wide and trace subscriptions, for the reserved-topic filter (core DeliveryPolicy). */
  private readonly policy: DeliveryPolicy;
  /** Queue copies sent to the leaf: the only events it may hand back as re-sent (sent-copies.ts). */
  private copies: SentCopies | undefined;
  /** Its queue-group entries' ids → group: which group a copy was sent for. */
  private readonly groups = new Map<number, string>();

  private constructor(
    private readonly p: Permissions | undefined,
    private readonly leafId: string,
    private readonly leaf: { peerId: string | undefined; send(chunk: Uint8Array): void; sendError(code: 'MB_ERR_PERMISSION_DENIED', correlation: number, message: string): void },
    private readonly logger: Logger,
  ) {
    this.policy = new DeliveryPolicy(`${INBOX}.${leafId}`);
  }

  /** The rules of a keyed leaf `peer` (its label's in `all`, else `'*'`'s), for the link `leaf`; undefined for a leaf without a key. */
  static of(all: ReadonlyMap<string, Permissions> | undefined, peer: { id: string; keyLabel?: string }, leaf: LeafRules['leaf'], logger: Logger): LeafRules | undefined {
    if (peer.keyLabel === undefined) return undefined;
    return new LeafRules(all?.get(peer.keyLabel) ?? all?.get('*'), peer.id, leaf, logger);
  }

  /** Checks `rules` (ClusterOptions.leafPermissions) once, at start: ConfigError naming the label. */
  static check(rules: Record<string, LeafPermissions> | undefined): ReadonlyMap<string, Permissions> | undefined {
    if (rules === undefined) return undefined;
    if (typeof rules !== 'object' || rules === null || Array.isArray(rules)) throw new ConfigError('leafPermissions must map leaf key labels (or *) to { publish, subscribe } rules');
    const out = new Map<string, Permissions>();
    for (const [label, r] of Object.entries(rules)) {
      if (label !== '*' && !/^[A-Za-z0-9_-]{1,64}$/.test(label)) throw new ConfigError(`leafPermissions: ${JSON.stringify(label)} is not a leaf key label or *`);
      try {
        out.set(label, new Permissions(r as never));
      } catch (e) {
        throw new ConfigError(`leafPermissions ${label}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Whether the leaf may announce interest in `pattern`: an inbox only of its
   * own (`_INBOX.<leaf id>…`: its clients', its HTTP API's; a deny rule still applies), one trace id
   * (or a `_TRACE` pattern its rules name), and within its subscribe rules.
   */
  maySubscribe(pattern: string): boolean {
    if (pattern.startsWith(`${INBOX}.`) || pattern === INBOX) {
      const second = pattern.slice(INBOX.length + 1).split('.', 1)[0]!;
      return second.startsWith(this.leafId) && this.p?.deniesSubscribe(pattern) !== true;
    }
    if (reservedSubscribeProblem(pattern, '', (x) => this.p?.explicitlyAllowsSubscribe(x) === true) !== undefined) return false;
    return this.p === undefined || this.p.canSubscribe(pattern);
  }

  /** An entry of the leaf's was added to, or removed from, the routing table. */
  added(s: Subscription): void {
    this.policy.add(s);
    if (s.queue !== undefined) this.groups.set(s.sid, s.queue);
  }

  removed(s: Subscription): void {
    this.policy.remove(s);
    if (s.queue !== undefined) this.groups.delete(s.sid);
  }

  /** Whether an event on `f`'s topic may go to the leaf: its subscribe rules' denies, other nodes' and clients' inboxes, traces it did not name. */
  admits(f: Frame): boolean {
    if (this.p?.filtersDelivery === true && !this.p.canReceiveFrame(f)) return false;
    if (f.buf[f.topicStart] !== 0x5f /* _ */) return true;
    return this.policy.reserved?.canReceive(f.topic) !== false;
  }

  /** A queue copy of `f` went to the leaf's entry `sid`; now and then a checkpoint PING follows (sent-copies.ts). */
  sentCopy(f: Frame, sid: number): void {
    const queue = this.groups.get(sid);
    if (queue === undefined) return;
    this.checkpoint((this.copies ??= new SentCopies()).sent(f, queue));
  }

  private checkpoint(correlation: number): void {
    if (correlation !== 0) this.leaf.send(encodeFrame({ type: FrameType.PING, correlation }));
  }

  /** Queue copies sent to the leaf that it may still hand back (sent-copies.ts). */
  get copiesHeld(): number {
    return this.copies?.size ?? 0;
  }

  /** Whether the leaf is so far behind on its queue copies that groups should pass it over (SentCopies.full). */
  get copiesFull(): boolean {
    return this.copies?.full === true;
  }

  /** A PONG came: true when it answered a checkpoint (not a liveness PING). */
  answered(correlation: number): boolean {
    if (correlation < CHECKPOINT) return false;
    if (this.copies !== undefined) this.checkpoint(this.copies.answered(correlation));
    return true;
  }

  /** Whether `f`, handed back by the leaf as a re-sent copy for group `queue`, is one it was sent, unchanged, and had not handed back. */
  handsBack(f: Frame, queue: string | undefined): boolean {
    return this.copies?.takeBack(f, queue) === true;
  }

  /** True when deliveries to the leaf are decided by topic: a run then holds one topic (publish-run.ts). */
  get filters(): boolean {
    return this.p?.filtersDelivery === true || this.policy.reserved !== undefined;
  }

  /**
   * True (dropped, counted, told at most once a minute) when the leaf may not
   * publish `f`: outside its publish rules, or a dead letter (`_DLQ…`, which
   * only nodes publish, SPEC 11.1) unless its rules name `_DLQ` explicitly
   * (a leaf with a durable queue group of its own: its store's dead letters).
   */
  refusesEvent(f: Frame): boolean {
    const deadLetter = isDeadLetterTopicAt(f.buf, f.topicStart, f.topicLen);
    if (deadLetter ? this.p?.explicitlyAllowsPublish(f.topic) === true : this.p === undefined || this.p.canPublishFrame(f)) return false;
    this.denied++;
    const topic = f.topic.slice(0, 200);
    throttled(this.logger).warn({ leaf: this.leaf.peerId, topic, code: 'MB_ERR_PERMISSION_DENIED' }, 'leaf event outside its publish rules dropped', 'leaf publish denied', this.leaf.peerId);
    // One non-fatal ERROR a minute, not one per event: a flood is not answered in kind.
    const now = performance.now();
    if (now - this.toldAt >= 60_000) {
      this.toldAt = now;
      this.leaf.sendError('MB_ERR_PERMISSION_DENIED', 0, `publish to "${topic}" (this hub's leafPermissions; ${this.denied} dropped so far)`);
    }
    return true;
  }
}
