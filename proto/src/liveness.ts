/**
 * Liveness of one connection, as a pure rule (no timers, no I/O, no
 * platform API) so every side of the protocol shares it: the SDK drives
 * it with one timer per connection (sdk Heartbeat); a node drives its client
 * sessions and peer links with it from one sweep timer (core Connection),
 * keeping a due time per connection.
 *
 * Input: what was received (a counter of chunks/frames, and the time of the
 * last one) and the clock at each tick. Output: what to do next (wait, send
 * a PING, probe now, or declare the connection stale).
 *
 * The rule: every `interval` ms, if nothing arrived during the interval,
 * send a PING; after `maxOut` unanswered pings the connection is stale.
 * Anything received since the previous tick answers the pings sent so far
 * (judging only by idle time fails a pure publisher, whose only traffic is
 * the PONG that lands just after its ping). A tick much later than planned
 * (timers frozen: laptop asleep, app in the background) means the socket
 * cannot be trusted: probe at once with a short deadline (`wakeTimeout`).
 *
 * Keepalive: a driver that also counts what it sends (`sent`) pings when it
 * has sent nothing for an interval, even while it receives. The other end
 * judges this one by what it receives: a subscriber that only reads a long
 * backlog over a slow link sent nothing, and the other end's PINGs wait
 * behind that backlog, so it was declared stale although it read all along;
 * a publisher whose own PINGs wait behind its unsent data the same way
 * (MQTT keeps the connection alive by what the client sends for this reason).
 *
 * Behind an upload: a driver that sees its oldest unanswered PING waiting
 * behind a backlog of its own output (bytes no PONG has confirmed the other
 * end read) says how long ago that PING went (`stuck`, ms). Then the pings
 * unanswered are not held against the connection until nothing at all was
 * received for the patience, (maxOut + 1) × max(interval, peerInterval):
 * the other end sends its keepalive at least every peerInterval however
 * much it has to read. And that PING may not get older than ten times the
 * patience, so a node that sends keepalives but never reads is found too.
 * peerInterval (the other end's, a node's WELCOME `ping`) counts at most
 * PEER_INTERVAL_CAP, so the other end cannot stretch the waits (a WELCOME of
 * 2^31 ms meant 74 days). A publisher pinging every 500 ms behind 1 GB of
 * its own upload, toward a node pinging every 20 s, was declared stale at
 * 1.5 s while the node read all along. The cost: a dead peer behind a
 * backlog is found after the patience (60 s with the node's default 20 s),
 * one that keeps pinging without reading after ten times that, the backlog
 * bounded meanwhile by the driver (the SDK's maxPendingBytes). A probe
 * (wake-up) that hears nothing is not stale while its PING is younger than
 * the patience (a 400 ms event-loop stall mid-upload made the connection
 * stale): the ticks' rule goes on; after a real sleep the PING is as old as
 * the sleep.
 */
export interface LivenessOptions {
  /** Ping when nothing was received for this long, ms. */
  interval: number;
  /** Unanswered pings after which the connection is stale. */
  maxOut: number;
  /** After a wake-up (timers were frozen), how long to wait for any byte before failing, ms. */
  wakeTimeout: number;
  /** The other end's keepalive interval, ms (a node's WELCOME `ping`), counted at most PEER_INTERVAL_CAP: see "Behind an upload" above. */
  peerInterval?: number;
}

/** Most of the other end's interval that "Behind an upload" counts, ms: a node's default (20 s). */
export const PEER_INTERVAL_CAP = 20_000;

/**
 * What the driver does after a tick: call tick() again in `ms` (after
 * sending a PING, for 'ping'), start a probe, or fail the connection. The
 * next tick must come when `ms` has elapsed, not earlier: a driver that
 * sweeps all its connections on one timer keeps a due time per connection.
 */
export type LivenessAction = { readonly do: 'wait'; readonly ms: number } | { readonly do: 'ping'; readonly ms: number } | { readonly do: 'probe' } | { readonly do: 'stale'; readonly reason: string };

/** The liveness rule of one connection (see LivenessOptions). */
export class Liveness {
  private outstanding = 0;
  private lastTick = 0;
  /** The received counter at the previous tick. */
  private lastCount = 0;
  private probeCount = 0;
  /** The sent counter when it last changed, and when (keepalive). */
  private lastSent: number | undefined;
  private sentAt = 0;

  constructor(readonly options: LivenessOptions) {}

  /** Starts (or restarts after a probe) at `now`; returns ms until the first tick. */
  start(now: number, received: number): number {
    this.outstanding = 0;
    this.lastTick = now;
    this.lastCount = received;
    this.lastSent = undefined;
    this.sentAt = now;
    return this.options.interval;
  }

  /**
   * A tick at `now`: `lastReceived` is the time of the last byte received,
   * `received` a counter of chunks (or frames) received (a counter, unlike a
   * ms timestamp, cannot tie with the ping's send time). `sent`, when the
   * driver counts it: a counter of writes (see Keepalive above).
   * `stuck`: the age of the oldest unanswered PING, ms, when it waits behind
   * this end's own backlog (see Behind an upload above); else undefined.
   */
  tick(now: number, lastReceived: number, received: number, sent?: number, stuck?: number): LivenessAction {
    const { interval, maxOut } = this.options;
    const gap = now - this.lastTick;
    const previous = this.lastTick;
    this.lastTick = now;
    const idle = now - lastReceived;
    if (received !== this.lastCount) {
      this.lastCount = received;
      this.outstanding = 0;
    }
    // Timers were frozen (sleep, background): do not trust the socket. The
    // clock went back (an NTP step, a clock set by hand): the times say
    // nothing either (an hour back once meant an hour-long wait, a dead socket
    // unnoticed): probe as well.
    if ((gap > interval * 2 && idle > interval) || gap < 0) return { do: 'probe' };
    if (stuck !== undefined && stuck >= 10 * this.patience) return { do: 'stale', reason: `a PING behind this end's backlog unanswered for ${stuck} ms` };
    if (idle < interval) {
      this.outstanding = 0;
      // Never longer than an interval, whatever the clock did.
      const ms = Math.min(interval, interval - idle);
      // A keepalive: nothing is counted as unanswered (something was received).
      return this.quiet(now, previous, sent) ? { do: 'ping', ms } : { do: 'wait', ms };
    }
    if (this.outstanding >= maxOut) {
      // Our pings wait behind our own output: only the other end's silence counts (no more pings meanwhile).
      const patience = this.patience;
      if (stuck !== undefined && idle < patience) return { do: 'wait', ms: Math.min(interval, patience - idle) };
      return { do: 'stale', reason: `${this.outstanding} pings unanswered${stuck === undefined ? '' : `, nothing received for ${idle} ms`}` };
    }
    this.outstanding++;
    return { do: 'ping', ms: interval };
  }

  /**
   * Nothing was sent for an interval (never without a `sent` counter): true
   * means a keepalive PING goes now. A change of the counter is taken as a
   * write at the previous tick (the earliest it can have been), a keepalive
   * as one now.
   */
  private quiet(now: number, previous: number, sent: number | undefined): boolean {
    if (sent === undefined) return false;
    if (sent !== this.lastSent || now < this.sentAt) {
      this.lastSent = sent;
      this.sentAt = Math.min(now, Math.max(this.sentAt, previous));
      return false;
    }
    if (now - this.sentAt < this.options.interval) return false;
    this.sentAt = now;
    return true;
  }

  /** A probe starts (a PING is sent now): returns its deadline, ms. */
  probe(received: number, timeout = this.options.wakeTimeout): number {
    this.probeCount = received;
    return timeout;
  }

  /**
   * The probe's deadline passed: stale unless something arrived since it
   * started, or its PING waits behind this end's backlog (`stuck`, as for
   * tick()) and is younger than the wait allowed there; else ms until the next tick.
   */
  probeEnded(now: number, received: number, timeout: number, stuck?: number): LivenessAction {
    if (received === this.probeCount && !(stuck !== undefined && stuck < this.patience)) return { do: 'stale', reason: `no answer within ${timeout} ms of a liveness probe` };
    return { do: 'wait', ms: this.start(now, received) };
  }

  /** How old a PING behind this end's backlog may get (see Behind an upload above), ms. */
  private get patience(): number {
    const { interval, maxOut, peerInterval = interval } = this.options;
    return (maxOut + 1) * Math.max(interval, Math.min(peerInterval, PEER_INTERVAL_CAP));
  }
}
