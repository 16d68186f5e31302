import { ClientError, MAX_VERSION, MIN_VERSION, assertWellFormed, type HelloBody, type MeshbusError, type WelcomeBody } from '@meshbus/proto';
import { Backoff } from './backoff.js';
import { Connection, type ConnectionHandlers } from './connection.js';
import { asError, connectionClosed, messageOf, safely } from './errors.js';
import type { CoreConnectOptions } from './options.js';
import { MAX_LEARNED_SERVERS, ServerPool, isSecure, parseLearned, type ServerUrl } from './servers.js';
import type { TransportFactory } from './transport.js';
import type { Status } from './types.js';
import { after } from './timer.js';
import { attemptsBound } from './option-checks.js';

export const CLIENT_LANG = 'meshbus-js/0.1.0';

/**
 * Connections that end sooner than this after WELCOME, twice or more in a
 * row, do not reset the reconnect backoff (see run()): a node that WELCOMEs
 * and drops at once, or says GOODBYE MB_ERR_DRAINING at once, must not make
 * its clients reconnect in a loop (127 connections/s per client with
 * DRAINING, ~8/s otherwise). One young connection lost (a node drained just
 * after the client came) still reconnects as usual.
 */
export const STABLE_MS = 5000;

/** What the loop needs from the engine it (re)connects. */
export interface LoopHost {
  readonly state: string;
  readonly closeError: MeshbusError | undefined;
  readonly handlers: ConnectionHandlers;
  emit(s: Status): void;
  /** Makes a connection that completed its handshake the current one; throws (having closed it) when it cannot. */
  adopt(conn: Connection, welcome: WelcomeBody): void;
}

/**
 * The connect / reconnect loop: the server list, backoff between
 * attempts, and the holds that pause it (suspend(), the platform saying
 * the network is gone). One attempt at a time; the connection it opens
 * is handed to the engine (adopt).
 */
export class SessionLoop {
  readonly pool: ServerPool;
  private readonly backoff: Backoff;
  private readonly transport: TransportFactory;
  /** The connection being opened (handshake), closed by suspend() and close(). */
  opening: Connection | undefined;
  private sleepTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  /** suspend() was called: no connection wanted until resume(). */
  suspended = false;
  /**
   * setOnline(false): the platform says there is no network. One attempt per backoff `max`
   * (a platform can be wrong: a LAN without internet); cleared by online and by a connection made.
   */
  offline = false;
  /** Rejects the attempt's wait for getToken() (abandon()). */
  private giveUp: ((e: MeshbusError) => void) | undefined;
  /** Loops waiting for suspended/offline to clear. */
  private releaseWaiters: Array<() => void> = [];
  /** When the last connection was adopted, and how many in a row lived less than STABLE_MS (see run()). */
  private adoptedAt = -Infinity;
  private flaps = 0;

  constructor(
    servers: string[],
    private readonly options: CoreConnectOptions,
    private readonly host: LoopHost,
  ) {
    const transport = (this.transport = options.transport);
    this.pool = new ServerPool(servers, {
      randomize: options.randomize,
      ignoreLearned: options.ignoreClusterPeers,
      supports: (u) => {
        try {
          return transport(u) !== undefined;
        } catch {
          return false;
        }
      },
    });
    this.backoff = new Backoff(options.reconnectBackoff);
  }

  get held(): boolean {
    return this.suspended || this.offline;
  }

  private closed(): MeshbusError {
    return this.host.closeError ?? connectionClosed('client is closed');
  }

  /**
   * Attempts until one connection is adopted. 'initial': one round over
   * the list, then MB_ERR_CONNECT_FAILED (unless waitOnFirstConnect);
   * 'reconnect': up to maxReconnectAttempts with backoff (`immediate`: the
   * first without delay). Rejects at once for terminal errors (auth).
   */
  async run(kind: 'initial' | 'reconnect', immediate: boolean): Promise<void> {
    const o = this.options;
    const max = attemptsBound(o.maxReconnectAttempts);
    const firstRound = this.pool.size;
    let attempt = 0;
    let lastError: MeshbusError | undefined;
    let waited = false;
    if (kind === 'reconnect') {
      // From the second connection in a row that died young, the backoff goes on from the previous ones and a DRAINING one is not left at once.
      this.flaps = Date.now() - this.adoptedAt < STABLE_MS ? this.flaps + 1 : 0;
      if (this.flaps > 1) immediate = false;
    }
    for (;;) {
      if (this.host.state === 'closed') throw this.closed();
      if (this.held && !waited) {
        // Suspended: no attempt until released. Offline: none until online or for the backoff's max (a platform
        // can be wrong: a LAN without internet), then one. Either way the next one at once, with a fresh backoff.
        await (this.suspended ? new Promise<void>((r) => this.releaseWaiters.push(r)) : this.sleep(this.backoff.max));
        if (this.host.state === 'closed') throw this.closed();
        waited = !this.suspended;
        if (kind === 'reconnect') {
          attempt = 0;
          immediate = true;
          this.flaps = 0;
        }
        continue;
      }
      waited = false;
      // Rounds: each tries every server once; only a round's first attempt waits, its ceiling doubling per round (dead learned servers cost no backoff).
      const size = this.pool.size;
      const round = Math.floor(attempt / size);
      let delay: number;
      if (kind === 'initial') {
        if (attempt >= firstRound && !o.waitOnFirstConnect) {
          throw new ClientError('MB_ERR_CONNECT_FAILED', `${lastError?.message ?? 'no server reachable'}`, { cause: lastError });
        }
        if (attempt - firstRound >= max) throw new ClientError('MB_ERR_CONNECT_FAILED', `gave up after ${attempt} attempts`, { cause: lastError });
        delay = round < 1 || attempt % size ? 0 : this.backoff.delay(round - 1);
      } else {
        if (attempt >= max) throw new ClientError('MB_ERR_CONNECT_FAILED', `gave up after ${attempt} reconnect attempts`, { cause: lastError });
        delay = (attempt === 0 && immediate) || attempt % size ? 0 : this.backoff.delay(round + Math.max(0, this.flaps - 1));
      }
      const server = this.pool.next();
      attempt++;
      if (kind === 'reconnect' || delay > 0) this.host.emit({ type: 'reconnecting', attempt, delay, server: server.href });
      if (delay > 0) await this.sleep(delay);
      if (this.host.state === 'closed') throw this.closed();
      if (this.suspended) continue;
      try {
        await this.open(server);
        return;
      } catch (e) {
        lastError = asError(e);
        if (isTerminal(lastError, o)) throw lastError;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    // A 'reconnecting' listener may have closed the client: no timer then (it held the process for the delay).
    if (this.host.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
      // A backoff max of Infinity (or past what a timer holds) must not turn into a 1 ms retry loop.
      this.sleepTimer = after(ms, () => {
        this.sleepTimer = undefined;
        this.wake = undefined;
        resolve();
      });
    });
  }

  /** One attempt: transport, HELLO/WELCOME, then adopt. A connection that fails any step is closed before the error propagates. */
  private async open(server: ServerUrl): Promise<void> {
    const transport = this.transport(server);
    if (!transport) throw new ClientError('MB_ERR_CONNECT_FAILED', `no transport for ${server.href}`);
    const hello = await this.hello();
    // getToken() may take long (a network fetch): close() or suspend() meanwhile had no connection to close, so no socket is opened now.
    this.assertWanted();
    const conn = new Connection(server, transport, this.host.handlers);
    this.opening = conn;
    let welcome: WelcomeBody;
    try {
      welcome = await conn.open(hello, this.options.connectTimeout ?? 5000);
      if (this.host.state === 'closed') throw this.closed();
      if (!conn.isOpen) throw conn.error ?? connectionClosed(`${server.href} closed after WELCOME`);
    } catch (e) {
      const err = asError(e);
      conn.close(err);
      throw err;
    } finally {
      if (this.opening === conn) this.opening = undefined;
    }
    // Before adopt(): a connection dropped while attaching starts the next run() from inside it.
    this.adoptedAt = Date.now();
    // A connection made proves the network there: a platform's "offline" (stale, or wrong on a LAN) holds no more.
    this.offline = false;
    this.host.adopt(conn, welcome);
  }

  /**
   * Throws when no attempt is wanted any more: the client closed, or was
   * suspended / went offline (the loop then waits for release). suspend()
   * and close() also close a connection in its handshake (`opening`).
   */
  private assertWanted(): void {
    if (this.host.state === 'closed') throw this.closed();
    if (this.suspended) throw connectionClosed('client suspended');
  }

  /** The HELLO for the next attempt (getToken() called here); MB_ERR_CONNECT_FAILED when the token is unusable. */
  private async hello(): Promise<HelloBody> {
    const o = this.options;
    let token = o.token;
    if (o.getToken) {
      // Until it settles, or the attempt is given up (abandon()): a getToken() that never settles (a hung token
      // fetch) held connect()'s abort signal, and resume() found no attempt to restart. A late result is ignored.
      token =
        (await new Promise<string | undefined>((resolve, reject) => {
          this.giveUp = reject;
          Promise.resolve()
            .then(o.getToken)
            .then(resolve, (e: unknown) => reject(new ClientError('MB_ERR_CONNECT_FAILED', `getToken failed: ${messageOf(e)}`, { cause: e })));
        })) ?? undefined;
      this.giveUp = undefined;
    }
    if (token !== undefined) {
      if (typeof token !== 'string') throw new ClientError('MB_ERR_CONNECT_FAILED', 'getToken must return a string or undefined');
      const bad = safely(() => assertWellFormed(token!, 'token from getToken'));
      if (bad) throw new ClientError('MB_ERR_CONNECT_FAILED', bad.message, { cause: bad });
    }
    const hello: HelloBody = { v: [MIN_VERSION, MAX_VERSION], lang: CLIENT_LANG };
    if (token !== undefined) hello.token = token;
    if (o.name !== undefined) hello.name = o.name;
    if (o.echo !== undefined) hello.echo = o.echo;
    return hello;
  }

  /** A GOODBYE's redirect list from server `from`: learn the servers, go to the first one this client can use. */
  redirect(targets: string[], from: ServerUrl): void {
    this.pool.learn(targets, from);
    const secure = isSecure(from);
    // Bounded like learn(): a hostile node's list of millions costs a bounded scan.
    for (const u of targets.slice(0, MAX_LEARNED_SERVERS)) {
      const href = safeHref(u, secure);
      if (href !== undefined && this.pool.has(href)) {
        this.pool.prefer(href);
        break;
      }
    }
  }

  /** Lets a held loop (and one sleeping between attempts) try now, unless still held. */
  release(): void {
    if (!this.held) this.wakeAll();
  }

  /** Ends the sleep between attempts and lets held loops go on. */
  private wakeAll(): void {
    for (const w of this.releaseWaiters.splice(0)) w();
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The client closed: wakes every waiting loop (they see 'closed' and stop) and gives up the attempt under way. */
  stop(): void {
    this.wakeAll();
    this.abandon(this.closed());
  }

  /**
   * Gives up the attempt under way (close(), suspend(), connect()'s signal):
   * closes the connection in its handshake, or ends the wait for getToken()
   * with `err`. The loop then stops (closed) or waits for release (held).
   */
  abandon(err: MeshbusError): void {
    const g = this.giveUp;
    this.giveUp = undefined;
    g?.(err);
    this.opening?.close(err);
  }
}

/** Errors after which reconnecting would only repeat the failure. */
export function isTerminal(e: MeshbusError, o: CoreConnectOptions): boolean {
  if (e.code === 'MB_ERR_AUTH_FAILED') return true;
  if (e.code === 'MB_ERR_TOKEN_EXPIRED') return o.getToken === undefined;
  return false;
}

function safeHref(u: string, secure: boolean): string | undefined {
  try {
    return parseLearned(u, secure).href;
  } catch {
    return undefined;
  }
}
