import { SessionError, type MeshbusError } from '@meshbus/proto';

export interface HeartbeatOptions {
  /** Ping when nothing was received for this long, ms. */
  interval: number;
  /** Unanswered pings after which the connection is dead. */
  maxOut: number;
  /** After a wake-up (timers were frozen), how long to wait for any byte before failing, ms. */
  wakeTimeout: number;
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

/**
 * Client-side liveness. Every `interval` ms, if nothing arrived during the
 * interval, send a PING; after `maxOut` unanswered pings the connection is
 * stale. Timers do not run while a laptop sleeps or a phone app is frozen,
 * so every tick first compares the wall clock with the previous tick: a gap
 * much larger than the interval means the socket cannot be trusted, and the
 * connection is probed at once with a short deadline (`wakeTimeout`).
 */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private outstanding = 0;
  private lastTick = 0;
  /** receivedCount() at the previous tick: anything since answers the pings sent before. */
  private lastCount = 0;
  private stopped = true;
  private readonly now: () => number;

  constructor(
    private readonly options: HeartbeatOptions,
    private readonly io: HeartbeatIo,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.lastTick = this.now();
    this.lastCount = this.io.receivedCount();
    this.schedule(this.options.interval);
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
  probe(timeout = this.options.wakeTimeout): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const before = this.io.receivedCount();
    this.io.ping();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      if (this.io.receivedCount() === before) {
        this.stopped = true;
        this.io.dead(new SessionError('MB_ERR_STALE_CONNECTION', `no answer within ${timeout} ms of a liveness probe`));
        return;
      }
      this.outstanding = 0;
      this.lastTick = this.now();
      this.schedule(this.options.interval);
    }, timeout);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(this.tick, ms);
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (this.stopped) return;
    const { interval, maxOut } = this.options;
    const now = this.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    const idle = now - this.io.lastReceived();
    // Any byte since the last tick answers the pings sent so far. Judging only by
    // idle time fails a client that receives nothing but PONGs (a pure publisher):
    // the PONG lands just after the ping, so the next tick finds it exactly one
    // interval old and would count the ping as unanswered.
    const count = this.io.receivedCount();
    if (count !== this.lastCount) {
      this.lastCount = count;
      this.outstanding = 0;
    }
    if (gap > interval * 2 && idle > interval) {
      // Timers were frozen (sleep, background): do not trust the socket.
      this.probe();
      return;
    }
    if (idle < interval) {
      this.outstanding = 0;
      this.schedule(interval - idle);
      return;
    }
    if (this.outstanding >= maxOut) {
      this.stopped = true;
      this.io.dead(new SessionError('MB_ERR_STALE_CONNECTION', `${this.outstanding} pings unanswered`));
      return;
    }
    this.outstanding++;
    this.io.ping();
    this.schedule(interval);
  };
}
