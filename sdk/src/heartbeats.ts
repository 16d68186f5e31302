import { Liveness, SessionError, type LivenessAction, type LivenessOptions, type MeshbusError } from '@meshbus/proto';
import { MAX_TIMER, after } from './timer.js';

// The pure rule lives in @meshbus/proto, shared with the node's sessions and peer links.
export { Liveness, type LivenessAction, type LivenessOptions } from '@meshbus/proto';

export interface HeartbeatOptions extends LivenessOptions {
  now?: () => number;
}

export interface HeartbeatIo {
  /** Date.now() of the last byte received. */
  lastReceived(): number;
  /** Chunks received so far (a counter: unlike a ms timestamp it cannot tie with the probe's send time). */
  receivedCount(): number;
  /** Writes so far: with it the heartbeat also pings when nothing was sent for an interval (keepalive, see proto Liveness). */
  sentCount?(): number;
  /** The age of the oldest unanswered PING, ms, when it waits behind this end's own backlog; else undefined (proto Liveness, "Behind an upload"). */
  stuck?(): number | undefined;
  ping(): void;
  dead(error: MeshbusError): void;
}

/** What connectionIo() reads of an SDK connection (connection.ts Connection). */
export interface HeartbeatConnection {
  readonly lastReceived: number;
  readonly receivedCount: number;
  readonly sentCount: number;
  stuckFor(behind: number): number | undefined;
  close(error: MeshbusError): void;
}

/**
 * Unconfirmed bytes ahead of the oldest unanswered PING past which it
 * counts as waiting behind this end's backlog (proto Liveness, "Behind an
 * upload"): only what went before the PING counts, so a publisher of small
 * events (below ~64 KiB per ping interval) keeps its own short deadline.
 */
const BACKED_UP = 64 * 1024;

/** The HeartbeatIo of one connection; `ping` sends a PING. */
export function connectionIo(conn: HeartbeatConnection, ping: () => void): HeartbeatIo {
  return {
    lastReceived: () => conn.lastReceived,
    receivedCount: () => conn.receivedCount,
    sentCount: () => conn.sentCount,
    stuck: () => conn.stuckFor(BACKED_UP),
    ping,
    dead: (e) => conn.close(e),
  };
}

/** Drives the Liveness rule of one connection with timers: sends the PINGs, reports a stale connection (SessionError MB_ERR_STALE_CONNECTION) once. */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private probing = false;
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
    // A probe under way keeps its deadline: calls in a row (visibility, app-state, online events) postponed it
    // for as long as they came, and a dead socket was never declared stale meanwhile.
    if (this.stopped || this.probing) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const ms = this.rule.probe(this.io.receivedCount(), timeout);
    this.probing = true;
    this.io.ping();
    this.timer = after(ms, () => {
      this.timer = undefined;
      this.probing = false;
      if (!this.stopped) this.act(this.rule.probeEnded(this.now(), this.io.receivedCount(), ms, this.io.stuck?.()));
    });
  }

  private schedule(ms: number): void {
    this.timer = after(ms, this.tick);
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (!this.stopped) this.act(this.rule.tick(this.now(), this.io.lastReceived(), this.io.receivedCount(), this.io.sentCount?.(), this.io.stuck?.()));
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
  return Math.min(Math.max(ping, 100), MAX_TIMER);
}
