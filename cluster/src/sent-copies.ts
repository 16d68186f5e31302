import { createHmac, randomBytes } from 'node:crypto';
import { FIXED_SIZE, OFF, type Frame } from '@meshbus/proto';

/** A checkpoint PING's correlation has this bit (liveness PINGs count up from 1 below it). */
export const CHECKPOINT = 0x80000000;
/** Copies sent between two checkpoint PINGs. */
const CHECK_EVERY = 256;
/** Copies kept at most per leaf link (held, or recorded and not yet trimmed): ~150 bytes each (measured: 148.8 B at 65,536), so at most ~10 MB. */
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
 * badPeerEvents). Each copy costs one HMAC-SHA256 pass over its bytes, under
 * a key this process draws at start: a CRC is linear, and a leaf rewrote a
 * copy's topic and payload and fixed 4 bytes to keep its CRC (the review of
 * this change); 48 bits of a keyed MAC cannot be matched offline.
 */
export class SentCopies {
  /** Key (origin, seq, group) → fingerprint, in the order sent. */
  private readonly held = new Map<string, number>();
  /** Keys in the order sent (a key taken back stays here until trimmed; held says whether it is still held). */
  private order: string[] = [];
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
   * checkpoint). Its link then counts as backed up, so queue groups give their events to other
   * members while they have one: past MAX_HELD the oldest copies' hand-backs would be refused
   * (9,461 of 150,000 lost with a leaf that held its input 3 s, before).
   */
  get full(): boolean {
    return this.order.length - this.head >= MAX_HELD / 2;
  }

  /**
   * A queue copy of `f` for group `queue` went to the leaf. Returns the
   * correlation of a checkpoint PING to send now, or 0.
   */
  sent(f: Frame, queue: string): number {
    const key = keyOf(f, queue);
    this.held.set(key, fingerprint(f));
    this.order.push(key);
    this.written++;
    // Bounded by what was recorded, not by what is held: a leaf that hands every copy back and never answers a checkpoint grew the list.
    if (this.order.length - this.head > MAX_HELD) this.trim(this.written - MAX_HELD);
    if (this.written - this.markedAt < CHECK_EVERY || this.marks.length >= MAX_MARKS) return 0;
    return this.mark();
  }

  /**
   * The PONG of checkpoint `correlation` came: what was sent before it came back or never will.
   * Returns the correlation of a checkpoint PING to send now, or 0: when none is left unanswered
   * and copies were sent since the last (sent while MAX_MARKS were out), one covers them at once.
   * Otherwise a leaf that counts as backed up (full) gets no more copies, so no checkpoint would
   * come to trim the rest: it stayed passed over while its group had another member.
   */
  answered(correlation: number): number {
    while (this.marks.length > 0) {
      const [c, at] = this.marks.shift()!;
      this.trim(at);
      if (c === correlation) break;
    }
    return this.marks.length === 0 && this.written > this.markedAt ? this.mark() : 0;
  }

  private mark(): number {
    this.markedAt = this.written;
    const correlation = (CHECKPOINT | (this.nextMark++ & 0x7fffffff)) >>> 0;
    this.marks.push([correlation, this.written]);
    return correlation;
  }

  /** True (and no longer held) when `f` is a copy sent for `queue`, unchanged, and not handed back yet. */
  takeBack(f: Frame, queue: string | undefined): boolean {
    if (queue === undefined) return false;
    const key = keyOf(f, queue);
    if (this.held.get(key) !== fingerprint(f)) return false;
    this.held.delete(key);
    return true;
  }

  /** Forgets the copies recorded before the `upTo`-th. */
  private trim(upTo: number): void {
    const firstIndex = this.written - (this.order.length - this.head);
    let i = this.head;
    for (const end = this.head + (upTo - firstIndex); i < end && i < this.order.length; i++) this.held.delete(this.order[i]!);
    this.head = i;
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

function keyOf(f: Frame, queue: string): string {
  return `${f.origin}.${f.seq}.${queue}`;
}

/** Drawn once per process: a leaf cannot compute a fingerprint it was not sent. */
const KEY = randomBytes(32);

/** HMAC-SHA256 of the frame without its hops and sid (what a hand-back changes) and header CRC, first 48 bits (exact in a double). */
function fingerprint(f: Frame): number {
  const b = f.buf;
  const s = f.start;
  const d = createHmac('sha256', KEY)
    .update(b.subarray(s + OFF.LENGTH, s + OFF.HOPS))
    .update(b.subarray(s + OFF.MAX_HOPS, s + OFF.SID))
    .update(b.subarray(s + FIXED_SIZE, f.end))
    .digest();
  return d.readUIntBE(0, 6);
}
