import { SessionError, type MeshbusError } from '@meshbus/proto';

/**
 * Liveness of one connection, as a pure rule (no timers, no I/O, no
 * platform API) so every side of the protocol can share it: the SDK drives
 * it with timers (Heartbeat below); a node could drive its sessions and
 * peer links with it the same way.
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
 */
export interface LivenessOptions {
  /** Ping when nothing was received for this long, ms. */
  interval: number;
  /** Unanswered pings after which the connection is stale. */
  maxOut: number;
  /** After a wake-up (timers were frozen), how long to wait for any byte before failing, ms. */
  wakeTimeout: number;
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

  constructor(readonly options: LivenessOptions) {}

  /** Starts (or restarts after a probe) at `now`; returns ms until the first tick. */
  start(now: number, received: number): number {
    this.outstanding = 0;
    this.lastTick = now;
    this.lastCount = received;
    return this.options.interval;
  }

  /**
   * A tick at `now`: `lastReceived` is the time of the last byte received,
   * `received` a counter of chunks (or frames) received (a counter, unlike a
   * ms timestamp, cannot tie with the ping's send time).
   */
  tick(now: number, lastReceived: number, received: number): LivenessAction {
    const { interval, maxOut } = this.options;
    const gap = now - this.lastTick;
    this.lastTick = now;
    const idle = now - lastReceived;
    if (received !== this.lastCount) {
      this.lastCount = received;
      this.outstanding = 0;
    }
    // Timers were frozen (sleep, background): do not trust the socket.
    if (gap > interval * 2 && idle > interval) return { do: 'probe' };
    if (idle < interval) {
      this.outstanding = 0;
      return { do: 'wait', ms: interval - idle };
    }
    if (this.outstanding >= maxOut) return { do: 'stale', reason: `${this.outstanding} pings unanswered` };
    this.outstanding++;
    return { do: 'ping', ms: interval };
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

export interface HeartbeatOptions extends LivenessOptions {
  now?: () => number;
}

export interface HeartbeatIo {
  /** Date.now() of the last byte received. */
  lastReceived(): number;
  /** Chunks received so far (a counter: unlike a ms timestamp it cannot tie with the probe's send time). */
  receivedCount(): number;
  ping(): void;
  dead(error: MeshbusError): void;
}

/** Drives the Liveness rule of one connection with timers: sends the PINGs, reports a stale connection (SessionError MB_ERR_STALE_CONNECTION) once. */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private readonly now: () => number;
  private readonly rule: Liveness;

  constructor(
    options: HeartbeatOptions,
    private readonly io: HeartbeatIo,
  ) {
    this.now = options.now ?? Date.now;
    this.rule = new Liveness(options);
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.rule.start(this.now(), this.io.receivedCount()));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Pings now and declares the connection dead unless some byte arrives
   * within `timeout` ms. For wake-ups, 'online' events, app foregrounding.
   */
  probe(timeout?: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const ms = this.rule.probe(this.io.receivedCount(), timeout);
    this.io.ping();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.act(this.rule.probeEnded(this.now(), this.io.receivedCount(), ms));
    }, ms);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(this.tick, ms);
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (!this.stopped) this.act(this.rule.tick(this.now(), this.io.lastReceived(), this.io.receivedCount()));
  };

  private act(a: LivenessAction): void {
    switch (a.do) {
      case 'wait':
        this.schedule(a.ms);
        return;
      case 'ping':
        this.io.ping();
        this.schedule(a.ms);
        return;
      case 'probe':
        this.probe();
        return;
      case 'stale':
        this.stopped = true;
        this.io.dead(new SessionError('MB_ERR_STALE_CONNECTION', a.reason));
        return;
    }
  }
}

/**
 * The heartbeat interval a node's WELCOME `ping` asks for, within what a
 * timer can do: 0 or less means the default 20 s; below 100 ms is raised to
 * 100 ms (a node cannot make the client spin); above 2^31−1 ms (about 24.8
 * days) is lowered to it, where setTimeout would otherwise fire after 1 ms,
 * over and over.
 */
export function heartbeatInterval(ping: number): number {
  if (!(ping > 0)) return 20_000;
  return Math.min(Math.max(ping, 100), 0x7fffffff);
}
