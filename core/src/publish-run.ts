import { BATCH_BYTES, type Frame } from '@meshbus/proto';
import { outOfScope, type DeliveryScope, type Receivers } from './routing-table.js';
import type { NodeStats } from './stats.js';
import { echoSkip, isLink, type EventSource, type Subscriber } from './subscriber.js';
import { isNodeOnlyTopicAt } from './auth/reserved-topics.js';

const NO_TARGETS: Subscriber[] = [];

/** Where the events of a run come from: a client session, or a link to another node. */
export type RunSource = Subscriber & EventSource;

/**
 * Events that reached the node back to back on one topic from one source (a
 * client's PUBs, or a peer's forwarded events), delivered to their receivers
 * as one range of the input chunk (issue #17: at 16 B the node spent more on
 * handing each event to each receiver than on anything else).
 *
 * An input chunk is decoded synchronously; while it is, nothing else runs on
 * the node. An event whose receivers are the same as the previous one's (the
 * same object: the route cache's entry of its topic, or the one receivers
 * object of every topic a single plain subscription alone matches,
 * RoutingTable.route; so no subscription change between them; on another
 * topic only when no target filters deliveries by topic, `deliversAnyTopic`,
 * and neither topic is reserved), from the same
 * source, in the same scope, and whose bytes follow the previous one's in the
 * same chunk extends the run; anything else delivers the run first (`flush`).
 * The run is always flushed before the chunk's callback returns
 * (ClientSession, PeerLink), before any other frame of the source is handled,
 * before an ERROR is sent to a client, and before any other delivery, so
 * every receiver gets the same bytes in the same order as one delivery per
 * event would give, and flow control and the outbound queue's bounds see a
 * run as what its events are (at most BATCH_BYTES, 65,522 bytes: one
 * socket read of a receiver's; a WebSocket wire cuts a run of large events
 * into smaller messages, proto messageLimit): while a receiver's wire takes it, one
 * range; once it is backed up, each event is queued, dropped or found past
 * the bound on its own (OutboundQueue.sendRun), as one delivery per event.
 *
 * Only receivers that can take a range (`deliverRange`: client sessions)
 * and keep no per-event state join a run: no queue group, durable position,
 * `max`, 'drop' subscription or payload limit. Links to other nodes join
 * only a run of a client's events that go to links alone: each event's hops
 * are raised in its own bytes first (MeshNode.ingress, forward-slab.ts
 * raiseHops; `forwardRaisedRange`), and an event larger than a link's
 * peer takes is no part of one. Traced events,
 * events with an extension block, durable topics and hop records
 * (`_TRACE`, whose receivers are chosen by payload) never join one
 * (MeshNode.ingress, deliverForwarded, `add`). SPEC §10.3 is unchanged: a receiver
 * gets each event as it arrived, stamped.
 */
export class PublishRun {
  private receivers: Receivers | undefined;
  private from: RunSource | undefined;
  private scope: DeliveryScope = 'all';
  /** Who gets the run's events: `receivers.plain` less the source and what the scope leaves out. */
  private targets: Subscriber[] = [];
  private first: Frame | undefined;
  private end = 0;
  private count = 0;
  /** The run's events had their hops raised for links (every target is one); the largest payload every target and the node take. */
  private raised = false;
  private maxPayload = Infinity;
  /** The run may go on across topics: its first topic is not reserved and every target `deliversAnyTopic`. */
  private anyTopic = false;
  /** The routing table's version when the receivers of the run's last event were found (`repeats`). */
  private version = -1;

  /** `nodeMaxPayload`: the node's limit, which a repeated event's payload length (not compared) is held to (`repeats`). */
  constructor(
    private readonly stats: NodeStats,
    private readonly table: { readonly version: number },
    private readonly nodeMaxPayload: number,
  ) {}

  /**
   * Adds `f` (stamped) to the run, or starts a new one after delivering the
   * last. Returns how many receivers it goes to, or -1 when it cannot be part
   * of a run: then the run is delivered and the caller delivers `f` itself.
   * `version`: the routing table's when `receivers` were found. `raised`:
   * `f` goes to links only and its hops were raised in place
   * (forward-slab.ts raiseHops); it joins only a run of such events.
   */
  add(f: Frame, receivers: Receivers, from: RunSource, scope: DeliveryScope, version: number, raised = false): number {
    // At most BATCH_BYTES a run (one 64 KiB read of a receiver's; a WebSocket wire may cut it further): a
    // WebSocket publisher's message may hold megabytes of events, which would otherwise leave as one.
    // Whether a hop record on `_TRACE.<id>` reaches a client depends on its payload (its origin:
    // trace-guard.ts), a dead letter on `_DLQ.<group>` on its header (the topic it was published on:
    // reserved-topics.ts), and a run is checked once, on its first event: these go one by one.
    if (isNodeOnlyTopicAt(f.buf, f.topicStart, f.topicLen)) {
      this.flush();
      return -1;
    }
    if (
      receivers === this.receivers &&
      this.continues(f, from) &&
      scope === this.scope &&
      raised === this.raised &&
      // Receivers may be one object for several topics (RoutingTable.route): across a topic change only
      // when no target's delivery depends on the topic, and never onto a reserved one (`_INBOX`).
      (this.anyTopic ? f.buf[f.topicStart] !== 0x5f /* _ */ : sameTopic(f, this.first!))
    ) {
      this.end = f.end;
      this.count++;
      this.version = version;
      return this.targets.length;
    }
    this.flush();
    const targets = runTargets(receivers, from, scope, raised);
    if (targets === undefined || targets.length === 0) return -1;
    let max = Infinity;
    for (let i = 0; i < targets.length; i++) max = Math.min(max, targets[i]!.maxPayload ?? Infinity);
    // A link whose peer refuses the payload skips that event and counts it (PeerLink.forwardRaised).
    if (f.payloadLen > max) return -1;
    this.maxPayload = Math.min(max, this.nodeMaxPayload);
    this.anyTopic = f.buf[f.topicStart] !== 0x5f /* _ */ && targets.every(deliversAnyTopic);
    this.raised = raised;
    this.receivers = receivers;
    this.from = from;
    this.scope = scope;
    this.targets = targets;
    this.first = f;
    this.end = f.end;
    this.count = 1;
    this.version = version;
    return targets.length;
  }

  /**
   * Whether `f` from `from`, whose header and topic repeat the run's last
   * event (the scanner's SCAN_REPEAT), joins the run without being routed
   * or checked again (MeshNode.publishRepeat, forwardedRepeat): it
   * `continues` the run (its payload, whose length is not compared, within
   * the node's limit and its targets'), and the routing table is unchanged
   * since the receivers were found (a full run delivered mid-chunk may
   * have closed a slow receiver).
   */
  repeats(f: Frame, from: RunSource): boolean {
    return this.table.version === this.version && this.continues(f, from);
  }

  /**
   * Whether `f` from `from` may join the run: it starts where the run's
   * last event ends in the same input chunk (so that event is the frame
   * just before it) and fits the run's bounds.
   */
  private continues(f: Frame, from: RunSource): boolean {
    const first = this.first;
    return first !== undefined && from === this.from && f.start === this.end && f.buf === first.buf && f.payloadLen <= this.maxPayload && f.end - first.start <= BATCH_BYTES;
  }

  /** Adds `f` (stamped; its hops raised when `raisesHops`) after `repeats` said it may. */
  extend(f: Frame): void {
    this.end = f.end;
    this.count++;
  }

  /** The run goes to links only and its events' hops were raised in place (each one added must be too). */
  get raisesHops(): boolean {
    return this.raised;
  }

  /** Delivers the run, if any. Cheap when there is none: called before anything else the node does for a publisher. */
  flush(): void {
    const r = this.receivers;
    if (r === undefined) return;
    const from = this.from!;
    const first = this.first!;
    const end = this.end;
    const count = this.count;
    const targets = this.targets;
    // Cleared before delivering: a delivery that fails a receiver must not find the run still there.
    this.receivers = this.from = this.first = undefined;
    this.targets = NO_TARGETS; // no closed receiver kept reachable until the next run
    const raised = this.raised;
    for (let i = 0; i < targets.length; i++) {
      const s = targets[i]!;
      if (raised) s.forwardRaisedRange!(first, end, count);
      else s.deliverRange!(first, end, count);
      if (s.congested) from.blockOn(s);
    }
    this.stats.msgsOut += targets.length * count;
    this.stats.bytesOut += targets.length * (end - first.start);
  }
}

const deliversAnyTopic = (s: Subscriber): boolean => s.deliversAnyTopic === true;

/** Whether `a` and `b` have the same topic (bytes compared, not only the hash). */
function sameTopic(a: Frame, b: Frame): boolean {
  const n = a.topicLen;
  if (n !== b.topicLen || a.topicHash !== b.topicHash) return false;
  const x = a.buf;
  const y = b.buf;
  const i = a.topicStart;
  const j = b.topicStart;
  for (let k = 0; k < n; k++) if (x[i + k] !== y[j + k]) return false;
  return true;
}

/**
 * The receivers of `r` a run from `from` in `scope` goes to, as MeshNode.deliver
 * picks them (the source itself unless a client asked for echo; peers and
 * gateways as the scope says); undefined when one of them needs each event on its own.
 */
function runTargets(r: Receivers, from: RunSource, scope: DeliveryScope, raised: boolean): Subscriber[] | undefined {
  // A copy from another node goes to no queue group (MeshNode.deliver).
  if ((r.groups.length !== 0 && !isLink(from.kind)) || r.sequenced.length !== 0 || r.limited.length !== 0) return undefined;
  const skip = echoSkip(from);
  const plain = r.plain;
  const targets: Subscriber[] = [];
  for (let i = 0; i < plain.length; i++) {
    const s = plain[i]!;
    if (s === skip || outOfScope(s.kind, scope)) continue;
    if (r.plainDrop[i] !== undefined) return undefined;
    if (raised ? s.forwardRaisedRange === undefined : s.deliverRange === undefined || s.maxPayload !== undefined) return undefined;
    targets.push(s);
  }
  return targets;
}
