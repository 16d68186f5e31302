import { TopicTrie, topicMatches, type Extension, type Frame, type MeshbusError } from '@meshbus/proto';
import { ClockCache } from './clock-cache.js';
import { asError } from './errors.js';
import { Msg, type Responder } from './msg.js';
import type { Subscription } from './subscription.js';
import type { ClientStats, DropReason, Status } from './types.js';

/** What the dispatcher needs from its client. */
export interface DispatchHost {
  readonly counters: ClientStats;
  readonly responder: Responder;
  emit(s: Status): void;
  /** Tells the node to stop routing to `sid` (UNSUB), when connected. */
  unsub(sid: number): void;
  /** A reply on the client's inbox (`topic` starts with `inboxPrefix`). */
  reply(f: Frame, topic: string, ext: Extension | undefined): void;
}

interface CachedTopic {
  readonly topic: string;
  /** The topic's UTF-8 bytes as char codes 0-255: the topic itself when it is ASCII (no copy). */
  readonly bytes: string;
  /** Plain subscriptions matching the topic, valid while the trie's version equals `version`. */
  subs: Subscription[];
  version: number;
}

/**
 * Received topics remembered for dispatch, second-chance replacement
 * (clock-cache.ts): one entry leaves per new topic, so a working set of up
 * to this many topics stays cached. Per ASCII entry ~45 B of cache slots +
 * a ~56 B entry + the topic string (~16 B + its length); the subscriber
 * lists are shared between topics that match the same subscriptions. At
 * most ~2 MB for 16,384 topics of 20 bytes.
 */
const MAX_CACHED = 16384;
/** Subscriptions ended recently, by sid: events still in flight for them are counted against them. */
const MAX_ENDED = 1024;
/** Plain ones of those searched by pattern for an event with sid 0 nobody takes (the newest first). */
const MAX_PLAIN_ENDED = 32;

/**
 * Received events → subscriptions. Owns the subscription table (by sid,
 * and plain ones in a topic trie for sid-0 deliveries), a cache of received
 * topics (no UTF-8 decode and no trie walk per event), and the accounting
 * of events nobody takes (status 'dropped', `stats().dropped`).
 */
export class Dispatcher {
  readonly subs = new Map<number, Subscription>();
  /** `_INBOX.<client id>.` of the current connection ('' before the first). */
  inboxPrefix = '';
  private readonly trie = new TopicTrie<Subscription>();
  private readonly cache = new ClockCache<number, CachedTopic>(MAX_CACHED);
  /** The last subscriber list computed: topics matching the same subscriptions share it (read-only). */
  private lastSubs: Subscription[] = [];
  private readonly collect = (sub: Subscription): void => {
    this.matched.push(sub);
  };
  private matched: Subscription[] = [];
  private readonly ended = new Map<number, { sub: Subscription; reason: DropReason }>();
  /** The last MAX_PLAIN_ENDED of those that were plain (sid-0 deliveries): a flood nobody takes looks at these only. */
  private readonly plainEnded: Array<{ sub: Subscription; reason: DropReason }> = [];

  constructor(private readonly host: DispatchHost) {}

  add(sub: Subscription): void {
    this.subs.set(sub.sid, sub);
    this.ended.delete(sub.sid);
    if (sub.options.queue === undefined && !sub.sequenced) this.trie.add(sub.pattern, sub);
  }

  private remove(sub: Subscription): void {
    this.subs.delete(sub.sid);
    if (sub.options.queue === undefined) this.trie.remove(sub.pattern, sub);
  }

  /**
   * Ends `sub` locally and (with `unsub`) tells the node; remembers it so
   * that events already on their way are counted against it, not lost silently.
   */
  end(sub: Subscription, reason: DropReason, unsub: boolean, error?: MeshbusError): void {
    this.remove(sub);
    if (unsub) this.host.unsub(sub.sid);
    if (this.ended.size >= MAX_ENDED) this.ended.delete(this.ended.keys().next().value!);
    const gone = { sub, reason };
    this.ended.set(sub.sid, gone);
    if (sub.options.queue === undefined && !sub.sequenced && this.plainEnded.push(gone) > MAX_PLAIN_ENDED) this.plainEnded.shift();
    sub.end(error);
  }

  /** Ends every subscription (client closed) with `error`. */
  endAll(error: MeshbusError | undefined): void {
    for (const sub of [...this.subs.values()]) {
      this.remove(sub);
      sub.end(error);
    }
    this.ended.clear();
    this.plainEnded.length = 0;
  }

  /** Hands a received PUB/REQ to its subscriptions (and to its request, for a reply). */
  event(f: Frame): void {
    const host = this.host;
    let d: CachedTopic;
    let ext: Extension | undefined;
    try {
      d = this.lookup(f);
      ext = f.ext;
    } catch (e) {
      host.emit({ type: 'error', error: asError(e) });
      return;
    }
    const topic = d.topic;
    host.counters.inMsgs++;
    host.counters.inBytes += f.payloadLen;
    const sid = f.sid;
    if (sid !== 0) {
      const sub = this.subs.get(sid);
      if (sub) this.deliverTo(sub, new Msg(f, topic, ext, host.responder, sub.codec));
      // A durable job dropped here is not settled: the node redelivers it after its ack timeout.
      else this.dropped(sid, topic);
      return;
    }
    // A reply is handed to its request (a late one, after the timeout, is
    // ignored: the timeout was the report); it also reaches any subscription matching it.
    let handed = 0;
    if (this.inboxPrefix && topic.startsWith(this.inboxPrefix)) {
      host.reply(f, topic, ext);
      handed++;
    }
    const trie = this.trie;
    if (d.version !== trie.version) {
      d.subs = this.subsOf(topic);
      d.version = trie.version;
    }
    const subs = d.subs;
    let msg: Msg | undefined;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      if (sub.isClosed) continue;
      msg ??= new Msg(f, topic, ext, host.responder, undefined);
      this.deliverTo(sub, sub.codec === undefined ? msg : new Msg(f, topic, ext, host.responder, sub.codec));
      handed++;
    }
    if (handed === 0) this.dropped(0, topic);
  }

  /**
   * ERROR MB_ERR_SLOW_CONSUMER (the node closes the connection), or
   * MB_ERR_EVENTS_DROPPED (SPEC §10.6): the node dropped `error.count` events
   * for the 'drop' subscription `sid` (its queue toward this client was
   * full); counted in `sub.nodeDropped`, the subscription goes on. Both are
   * a 'slow-consumer' status from the node.
   */
  nodeSlow(sid: number, error: MeshbusError & { count?: number }): void {
    const sub = this.subs.get(sid);
    const dropped = error.count;
    if (sub && dropped) sub.nodeDropped += dropped;
    this.host.emit({ type: 'slow-consumer', source: 'node', error, sid: sub?.sid, pattern: sub?.pattern, dropped });
  }

  /** Slow-consumer drop in a subscription's queue (the subscription reports it). */
  slowConsumer(sub: Subscription, first: boolean): void {
    this.host.counters.dropped++;
    if (!first) return;
    this.host.emit({ type: 'slow-consumer', source: 'client', sid: sub.sid, pattern: sub.pattern, dropped: sub.dropped, pending: sub.pending });
  }

  /**
   * Delivers `msg` to `sub`; once `max` is reached the subscription is
   * removed (the node stops routing to it on its own: SUB carried `max`).
   */
  private deliverTo(sub: Subscription, msg: Msg): void {
    if (!sub.deliver(msg) && !sub.isClosed) this.end(sub, 'max-reached', true);
  }

  /**
   * Counts and reports an event nobody here takes: for a subscription that
   * ended (max reached, unsubscribed) it counts against that subscription;
   * sid 0 with no local match happens when the UNSUB crossed the event: the
   * node sends a plain subscription's events by topic, so it counts against
   * the last ended plain subscription (of the last 32) whose pattern matches (told as
   * `no-subscriber`, sid 0).
   */
  private dropped(sid: number, topic: string): void {
    const counters = this.host.counters;
    counters.dropped++;
    let gone = sid !== 0 ? this.ended.get(sid) : undefined;
    for (let i = sid === 0 ? this.plainEnded.length - 1 : -1; i >= 0 && !gone; i--) if (topicMatches(this.plainEnded[i]!.sub.pattern, topic)) gone = this.plainEnded[i];
    if (gone) {
      gone.sub.dropped++;
      this.host.emit({ type: 'dropped', reason: gone.reason, sid: gone.sub.sid, pattern: gone.sub.pattern, topic, count: gone.sub.dropped });
    } else {
      this.host.emit({ type: 'dropped', reason: sid !== 0 ? 'unknown-subscription' : 'no-subscriber', sid, topic, count: counters.dropped });
    }
  }

  /**
   * The plain subscriptions matching `topic` at the trie's current version;
   * the previous list when it holds the same subscriptions (so a wildcard
   * subscriber's topics share one array).
   */
  private subsOf(topic: string): Subscription[] {
    const m = this.matched;
    const last = this.lastSubs;
    this.trie.match(topic, this.collect);
    let i = 0;
    while (i < m.length && m[i] === last[i]) i++;
    if (i === m.length && i === last.length) {
      m.length = 0;
      return last;
    }
    this.matched = [];
    return (this.lastSubs = m);
  }

  /**
   * The topic of a received event and its local subscribers, cached by the
   * header's topic hash (its low 30 bits: a small-integer key) and
   * confirmed against the topic bytes. The subscriber list is recomputed
   * when the trie changed (subscribe / unsubscribe). Reply topics are not
   * cached. A miss decodes the topic once and keeps no copy of an ASCII
   * topic's bytes.
   */
  private lookup(f: Frame): CachedTopic {
    const len = f.topicLen;
    const key = f.topicHash & 0x3fffffff;
    const d = this.cache.get(key);
    if (d !== undefined && d.bytes.length === len) {
      const { buf, topicStart } = f;
      const t = d.bytes;
      let i = 0;
      while (i < len && buf[topicStart + i] === t.charCodeAt(i)) i++;
      if (i === len) return d;
    }
    // One string of the bytes' codes, flat (built in one call, not char by
    // char: a concatenated string is a rope, slower to compare and match):
    // it is the topic itself when every byte is ASCII.
    const raw = f.topicBytes;
    let bytes = '';
    // Arguments of one call: topics are short (node default 256 bytes); a long one is built in parts.
    for (let p = 0; p < len; p += 4096) bytes += String.fromCharCode.apply(null, raw.subarray(p, p + 4096) as unknown as number[]);
    let i = 0;
    while (i < len && raw[i]! < 0x80) i++;
    const topic = i === len ? bytes : f.topic;
    const e: CachedTopic = { topic, bytes, subs: NONE, version: -1 };
    if (!this.inboxPrefix || !topic.startsWith(this.inboxPrefix)) this.cache.set(key, e);
    return e;
  }
}

const NONE: Subscription[] = [];
