import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { MeshNode } from '../node.js';
import { HttpError } from './http-errors.js';

/** Longest the API's close waits for the answers of the calls it failed, ms. */
const ANSWER_WAIT = 1000;

/**
 * The calls that wait on something (a request for its reply, a trace for its
 * `wait`, the mesh's and the workers' figures): counted and bounded
 * node-wide, given up when their caller goes (`begin`, SPEC 9.7). When the
 * API closes they are woken, answer 503 MB_ERR_DRAINING, and close waits
 * (at most ANSWER_WAIT) until those answers are written.
 * The close work runs in fastify's preClose, before fastify cuts every
 * connection (forceCloseConnections): done in onClose, which runs after,
 * the answers were lost and the callers saw a socket error instead.
 */
export class WaitingCalls {
  private readonly wakes = new Set<() => void>();
  private readonly answered = new Set<Promise<void>>();
  private closingNow = false;

  private readonly count: WaitingCount;

  /**
   * `close()` runs the wakers given to `wait` (the inbox, the traces) in the app's preClose.
   * `limit`: calls waiting at once on the node (every API of it together) past which this API refuses one.
   */
  constructor(app: FastifyInstance, node: MeshNode, readonly limit: number, close: () => void) {
    this.count = waitingCount(node);
    app.addHook('preClose', async () => {
      this.closingNow = true;
      close();
      for (const wake of [...this.wakes]) wake();
      if (this.answered.size === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(this.answered), new Promise<void>((r) => (timer = setTimeout(r, ANSWER_WAIT)))]);
      clearTimeout(timer);
    });
  }

  /** True once the API is closing. */
  get closing(): boolean {
    return this.closingNow;
  }

  /**
   * Starts a call that waits, for `reply`: refused with 503
   * MB_ERR_TOO_MANY_CONNECTIONS (counted) when `limit` calls wait on the
   * node already. The call's `signal` aborts when the caller goes (its
   * answer or its connection closes before the answer is written): what it
   * waits for (a reply, a trace's wait, the mesh's figures) is then given
   * up at once, its subscription gone and its memory free. Before, an
   * abandoned call kept its request, its body and its wait (a trace's
   * `_TRACE.<id>` subscription, announced to every peer) until its timeout:
   * 400 abandoned 1 MiB requests held ~427 MB for 60 s, counted nowhere.
   * `end()` (idempotent) when the wait is over.
   */
  begin(reply: FastifyReply): WaitingCall {
    if (this.count.now >= this.limit) {
      this.count.refused++;
      throw new HttpError('MB_ERR_TOO_MANY_CONNECTIONS', `${this.count.now} HTTP calls wait on this node (maxWaiting ${this.limit}); retry later`);
    }
    this.count.now++;
    const ctl = new AbortController();
    let over = false;
    const end = (): void => {
      if (over) return;
      over = true;
      this.count.now--;
    };
    this.track(reply, () => {
      // The answer was not written (or the connection went under it): nobody is left to answer.
      if (!over && !reply.raw.writableFinished) ctl.abort(new HttpError('MB_ERR_CONNECTION_CLOSED', 'the caller closed the connection'));
      end();
    });
    return { signal: ctl.signal, end };
  }

  /**
   * `reply`'s answer is one close waits for (a call that waits, failed at
   * close). Done when the answer closes, or when its connection does: an
   * answer pipelined behind an earlier one has no socket of its own yet and
   * sees no 'close' when the connection goes, so it stayed in `answered` for
   * ever, with its body (tmp-review-flow e3: 51 MiB of replies held after
   * every connection was cut).
   */
  private track(reply: FastifyReply, closed: () => void): void {
    const socket = reply.request.raw.socket as Socket | null;
    const done = new Promise<void>((resolve) => {
      const end = (): void => {
        reply.raw.off('close', end);
        if (socket) this.onSocket.get(socket)?.delete(end);
        closed();
        resolve();
      };
      reply.raw.once('close', end);
      if (socket) this.whenClosed(socket, end);
    });
    this.answered.add(done);
    void done.then(() => this.answered.delete(done));
  }

  /** Calls of a connection to end when it closes: one 'close' listener a socket, however many calls it pipelines. */
  private readonly onSocket = new WeakMap<Socket, Set<() => void>>();

  private whenClosed(socket: Socket, end: () => void): void {
    let ends = this.onSocket.get(socket);
    if (!ends) {
      const set = new Set<() => void>();
      ends = set;
      this.onSocket.set(socket, set);
      socket.once('close', () => {
        this.onSocket.delete(socket);
        for (const e of [...set]) e();
      });
    }
    if (socket.destroyed && socket.closed) return void end();
    ends.add(end);
  }

  /** Resolves after `ms`, or at once when the API closes (then `closing` is true) or `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakes.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakes.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
      if (this.closingNow || signal?.aborted) wake();
    });
  }
}

/** A call that waits (WaitingCalls.begin). */
export interface WaitingCall {
  /** Aborts when the caller goes before its answer is written; its reason is an HttpError. */
  readonly signal: AbortSignal;
  /** The wait is over: the call no longer counts against the limit (idempotent). */
  end(): void;
}

/** Calls waiting now on a node, every HTTP API of it together, and those refused at a limit. */
export interface WaitingCount {
  now: number;
  refused: number;
}

const ofNode = new WeakMap<MeshNode, WaitingCount>();

/** The node's count of waiting HTTP calls (one for every HTTP API of the node). */
export function waitingCount(node: MeshNode): WaitingCount {
  let c = ofNode.get(node);
  if (!c) ofNode.set(node, (c = { now: 0, refused: 0 }));
  return c;
}

/** `p`, or `signal`'s reason as soon as it aborts (what `p` does then is not waited for). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e as Error);
      },
    );
  });
}
