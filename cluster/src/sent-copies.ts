import { createHmac, randomBytes } from 'node:crypto';
import { FIXED_SIZE, OFF, type Frame } from '@meshbus/proto';

/** A checkpoint PING's correlation has this bit (liveness PINGs count up from 1 below it). */
export const CHECKPOINT = 0x80000000;
/** Copies sent between two checkpoint PINGs. */
const CHECK_EVERY = 256;
/** Copies kept at most per leaf link (held, or recorded and not yet trimmed): ~50 B each (measured: 3.2 MB at 65,536; 5.1 MB with 131,000 recorded, the list not yet compacted). */
const MAX_HELD = 65_536;
/** Checkpoints unanswered at most: past it none is sent until one is answered (MAX_HELD bounds what is held meanwhile). */
const MAX_MARKS = 8;

/**
 * Queue copies a hub sent one keyed leaf and the leaf may still hand back
 * as re-sent (SPEC 10.3, member-gone.ts): the only events of another origin
 * such a leaf may send up, each once, byte for byte as sent (only its hops
 * and sid may differ) and for the group it was sent for. A keyed leaf holds
 * no cluster secret: without this it could stamp any node's origin and a
 * far-future sequence on a "re-sent" copy (the hub's other leaves then drop
 * that node's events as old), or, with a genuine (origin, seq), another
 * topic or payload, past its own publish rules.
 *
 * How long a copy is held: a leaf hands a copy back while it reads it (a
 * run of events is delivered before the next control frame, peer-link.ts),
 * so once it answered a PING sent after the copy, the copy came back or never
 * will. Every CHECK_EVERY copies the hub sends a checkpoint PING (correlation
 * with CHECKPOINT set) and forgets, at its PONG, what went before it. What is
 * held is then what is in flight to the leaf (the link's queue, the sockets,
 * the leaf's input) plus up to CHECK_EVERY copies; past MAX_HELD the oldest
 * is forgotten and its hand-back refused like a forged one (the hub's
 * badPeerEvents). From half of it the leaf is `full` (its link is passed
 * over by queue groups, Subscriber.passedOver).
 *
 * A copy is known by its fingerprint alone: 48 bits of HMAC-SHA256, under a
 * key this process draws at start, over its bytes but hops, sid and CRC, and
 * its group (a CRC is linear: a leaf rewrote a copy's topic and payload and
 * fixed 4 bytes to keep its CRC, the review of the first version; 48 bits of
 * a keyed MAC cannot be matched offline). A number, not a string of origin,
 * sequence and group: ~50 bytes a copy, not ~350 (the twenty-seventh
 * session's review measured 23.2 MB for 65,536 string keys).
 */
export class SentCopies {
  /** Fingerprints of the copies held. */
  private readonly held = new Set<number>();
  /** Fingerprints in the order sent, from `head` (one taken back stays until trimmed; `held` says whether it is still held). */
  private order: number[] = [];
  private head = 0;
  /** Copies recorded so far, and at the last checkpoint. */
  private written = 0;
  private markedAt = 0;
  /** Checkpoints sent and not answered: [correlation, copies written before it]. */
  private readonly marks: Array<[number, number]> = [];
  private nextMark = 0;

  /** Copies now held (for tests and stats). */
  get size(): number {
    return this.held.size;
  }

  /**
   * Half of MAX_HELD recorded and not yet trimmed: the leaf is far behind (or never answers a
   * checkpoint). Queue groups then give their events to other members while they have one
   * (Subscriber.passedOver): past MAX_HELD the oldest copies' hand-backs would be refused
   * (9,464 of 150,000 lost with a leaf that held its input, before).
   */
  get full(): boolean {
    return this.recorded >= MAX_HELD / 2;
  }

  /** Copies recorded and not yet trimmed (taken back or not). */
  private get recorded(): number {
    return this.order.length - this.head;
  }

  /**
   * A queue copy of `f` for group `queue` went to the leaf. Returns the
   * correlation of a checkpoint PING to send now, or 0.
   */
  sent(f: Frame, queue: string): number {
    const fp = fingerprint(f, queue);
    this.held.add(fp);
    this.order.push(fp);
    this.written++;
    // Bounded by what was recorded, not by what is held: a leaf that hands every copy back and never answers a checkpoint grew the list.
    if (this.recorded > MAX_HELD) this.trim(this.written - MAX_HELD);
    if (this.written - this.markedAt < CHECK_EVERY || this.marks.length >= MAX_MARKS) return 0;
    return this.mark();
  }

  /**
   * The PONG of checkpoint `correlation` came: what was sent before it came back or never will.
   * Returns the correlation of a checkpoint PING to send now, or 0: when none is left unanswered
   * and one was skipped meanwhile (CHECK_EVERY copies went out while MAX_MARKS were), it covers
   * them at once. Otherwise a leaf passed over (full) gets no more copies, so no checkpoint would
   * come to trim the rest: passed over for good while its group had another member.
   */
  answered(correlation: number): number {
    while (this.marks.length > 0) {
      const [c, at] = this.marks.shift()!;
      this.trim(at);
      if (c === correlation) break;
    }
    // Only a skipped one: one for every answer while copies flow made a PING per copy (the review: 9,745 for 10,000).
    return this.marks.length === 0 && this.written - this.markedAt >= CHECK_EVERY ? this.mark() : 0;
  }

  /** True (and no longer held) when `f` is a copy sent for `queue`, unchanged, and not handed back yet. */
  takeBack(f: Frame, queue: string | undefined): boolean {
    return queue !== undefined && this.held.delete(fingerprint(f, queue));
  }

  private mark(): number {
    this.markedAt = this.written;
    const correlation = (CHECKPOINT | (this.nextMark++ & 0x7fffffff)) >>> 0;
    this.marks.push([correlation, this.written]);
    return correlation;
  }

  /** Forgets the copies recorded before the `upTo`-th. */
  private trim(upTo: number): void {
    const firstIndex = this.written - this.recorded;
    let i = this.head;
    for (const end = this.head + (upTo - firstIndex); i < end && i < this.order.length; i++) this.held.delete(this.order[i]!);
    this.head = i;
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

/** Drawn once per process: a leaf cannot compute a fingerprint it was not sent. */
const KEY = randomBytes(32);

/**
 * HMAC-SHA256 of the frame without its hops and sid (what a hand-back changes) and header CRC, then
 * the group's name, first 48 bits (exact in a double). The frame's bytes start with its length, so
 * where they end and the name starts is unambiguous.
 */
function fingerprint(f: Frame, queue: string): number {
  const b = f.buf;
  const s = f.start;
  const d = createHmac('sha256', KEY)
    .update(b.subarray(s + OFF.LENGTH, s + OFF.HOPS))
    .update(b.subarray(s + OFF.MAX_HOPS, s + OFF.SID))
    .update(b.subarray(s + FIXED_SIZE, f.end))
    .update(queue)
    .digest();
  return d.readUIntBE(0, 6);
}
