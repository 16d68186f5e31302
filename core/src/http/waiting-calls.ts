import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Longest the API's close waits for the answers of the calls it failed, ms. */
const ANSWER_WAIT = 1000;

/**
 * The calls that wait on something (a request for its reply, a trace for its
 * `wait`): when the API closes they are woken, answer 503 MB_ERR_DRAINING,
 * and close waits (at most ANSWER_WAIT) until those answers are written.
 * The close work runs in fastify's preClose, before fastify cuts every
 * connection (forceCloseConnections): done in onClose, which runs after,
 * the answers were lost and the callers saw a socket error instead.
 */
export class WaitingCalls {
  private readonly wakes = new Set<() => void>();
  private readonly answered = new Set<Promise<void>>();
  private closingNow = false;

  /** `close()` runs the wakers given to `wait` (the inbox, the traces) in the app's preClose. */
  constructor(app: FastifyInstance, close: () => void) {
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
   * `reply`'s answer is one close waits for (a call that waits, failed at
   * close). Done when the answer closes, or when its connection does: an
   * answer pipelined behind an earlier one has no socket of its own yet and
   * sees no 'close' when the connection goes, so it stayed in `answered` for
   * ever, with its body (tmp-review-flow e3: 51 MiB of replies held after
   * every connection was cut).
   */
  track(reply: FastifyReply): void {
    const socket = reply.request.raw.socket as Socket | null;
    const done = new Promise<void>((resolve) => {
      const end = (): void => {
        reply.raw.off('close', end);
        if (socket) this.onSocket.get(socket)?.delete(end);
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

  /** Resolves after `ms`, or at once when the API closes (then `closing` is true). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakes.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakes.add(wake);
      if (this.closingNow) wake();
    });
  }
}
