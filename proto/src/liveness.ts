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
 * Backed up: a driver that knows its own output is backed up (bytes the OS
 * would not take yet: `backedUp` at a tick) and the other end's keepalive
 * interval (`peerInterval`) does not fail the connection for pings that
 * wait behind that output, until nothing at all was received for
 * (maxOut + 1) × max(interval, peerInterval): the other end sends
 * something at least every peerInterval however much it has to read. A
 * publisher pinging every 500 ms behind 1 GB of its own upload, toward a
 * node pinging every 20 s, was declared stale at 1.5 s while the node read
 * all along. The cost: a dead peer behind a backed-up upload is found after
 * that longer silence (60 s at the node's default 20 s), with what waits
 * bounded by the driver (the SDK's maxPendingBytes). Probes (wake-ups) keep
 * their short deadline: after a sleep the socket is suspect.
 */
export interface LivenessOptions {
  /** Ping when nothing was received for this long, ms. */
  interval: number;
  /** Unanswered pings after which the connection is stale. */
  maxOut: number;
  /** After a wake-up (timers were frozen), how long to wait for any byte before failing, ms. */
  wakeTimeout: number;
  /** The other end's keepalive interval, ms (a node's WELCOME `ping`): see "Backed up" above. Without it, none applies. */
  peerInterval?: number;
}

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
  /** This end's output was backed up at a tick since the pings now unanswered began. */
  private backedUp = false;

  constructor(readonly options: LivenessOptions) {}

  /** Starts (or restarts after a probe) at `now`; returns ms until the first tick. */
  start(now: number, received: number): number {
    this.outstanding = 0;
    this.backedUp = false;
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
   * `backedUp`: this end's output waits for the OS now (see Backed up above).
   */
  tick(now: number, lastReceived: number, received: number, sent?: number, backedUp = false): LivenessAction {
    const { interval, maxOut } = this.options;
    const gap = now - this.lastTick;
    const previous = this.lastTick;
    this.lastTick = now;
    const idle = now - lastReceived;
    if (received !== this.lastCount) {
      this.lastCount = received;
      this.outstanding = 0;
      this.backedUp = false;
    }
    // Timers were frozen (sleep, background): do not trust the socket. The
    // clock went back (an NTP step, a clock set by hand): the times say
    // nothing either (an hour back once meant an hour-long wait, a dead socket
    // unnoticed): probe as well.
    if ((gap > interval * 2 && idle > interval) || gap < 0) return { do: 'probe' };
    if (idle < interval) {
      this.outstanding = 0;
      this.backedUp = false;
      // Never longer than an interval, whatever the clock did.
      const ms = Math.min(interval, interval - idle);
      // A keepalive: nothing is counted as unanswered (something was received).
      return this.quiet(now, previous, sent) ? { do: 'ping', ms } : { do: 'wait', ms };
    }
    if (backedUp) this.backedUp = true;
    if (this.outstanding >= maxOut) {
      const peer = this.options.peerInterval;
      const patience = peer === undefined ? 0 : (maxOut + 1) * Math.max(interval, peer);
      // Our pings may wait behind our own output: only the other end's silence counts (no more pings meanwhile).
      if (this.backedUp && idle < patience) return { do: 'wait', ms: Math.min(interval, patience - idle) };
      return { do: 'stale', reason: `${this.outstanding} pings unanswered${this.backedUp ? `, nothing received for ${idle} ms` : ''}` };
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

  /** The probe's deadline passed: stale unless something arrived since it started; else ms until the next tick. */
  probeEnded(now: number, received: number, timeout: number): LivenessAction {
    if (received === this.probeCount) return { do: 'stale', reason: `no answer within ${timeout} ms of a liveness probe` };
    return { do: 'wait', ms: this.start(now, received) };
  }
}
