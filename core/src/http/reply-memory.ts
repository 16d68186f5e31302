import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { MeshNode } from '../node.js';
import type { NodeStats } from '../stats.js';

/**
 * A body this small is always answered (counted, never refused): probes,
 * error answers and small views get through while the bound is reached.
 */
export const SMALL_ANSWER = 4096;

interface Conn {
  /** Body bytes of this connection's answers not written out yet. */
  held: number;
  /** Answers of this connection counted now. */
  answers: Set<ServerResponse>;
  /** Bytes the socket had completed at the last check, and what its handle still queued. */
  done: number;
  queued: number;
  /** When the socket last took bytes (or had none waiting), ms. */
  since: number;
}

/**
 * What the HTTP API holds in memory for answers not yet written out (core
 * README "HTTP API", SPEC 9.6): a request's reply, a view, a trace. Counted
 * from the moment the answer is handed to the server until its last byte
 * has left for the kernel or its connection closed; one per node (every API
 * of the node together). Bounds, like a client connection's queue:
 *
 * - node-wide, `inputBudget` bytes (the node's memory bound for input: the
 *   same figure for HTTP output): an answer that would take the total past
 *   it is refused (503 MB_ERR_SLOW_CONSUMER), unless nothing is held;
 * - per connection, `maxPending` bytes (pipelined answers of one connection
 *   that does not read): the same refusal, unless that connection holds nothing;
 * - a connection whose socket took no byte for `writeDeadline` ms while
 *   bytes waited for it is destroyed (the client port's write deadline).
 *
 * Answers of SMALL_ANSWER bytes or less are counted, never refused.
 */
export class ReplyMemory {
  readonly limit: number;
  readonly perConnection: number;
  readonly deadline: number;
  private readonly conns = new Map<Socket, Conn>();
  private readonly charged = new WeakMap<ServerResponse, number>();
  private readonly watched = new WeakSet<Socket>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly stats: NodeStats['httpReplies'];

  constructor(node: MeshNode) {
    const o = node.options;
    this.limit = o.inputBudget;
    this.perConnection = o.maxPending;
    this.deadline = o.writeDeadline;
    this.stats = node.stats.httpReplies;
  }

  /** Bytes held now, every connection together. */
  get held(): number {
    return this.stats.heldBytes;
  }

  /**
   * Why `bytes` more for `res`, an answer on `socket`, would pass a bound
   * (counted in `refused`), or undefined when they may be held.
   */
  refusal(res: ServerResponse, socket: Socket, bytes: number): string | undefined {
    if (bytes <= SMALL_ANSWER) return undefined;
    const c = this.conns.get(socket);
    // What `res` itself was charged already is not counted against it (the route counts a reply, then onSend again).
    const own = this.charged.get(res) ?? 0;
    const mine = (c?.held ?? 0) - own;
    const all = this.held - own;
    let why: string | undefined;
    if (mine > 0 && mine + bytes > this.perConnection) why = `this connection has ${mine} bytes of answers not read yet; ${bytes} more would pass ${this.perConnection} (maxPending)`;
    else if (all > 0 && all + bytes > this.limit) why = `HTTP answers not read yet hold ${all} bytes on this node; ${bytes} more would pass ${this.limit}`;
    if (why !== undefined) this.stats.refused++;
    return why;
  }

  /**
   * Counts `bytes` for `res` on `socket` (replacing what it was charged)
   * until it is written out or closed. `socket` is the request's: a
   * pipelined answer waiting behind an earlier one has none yet (`res.socket`
   * is null until its turn), and its body waits in memory all the same.
   */
  hold(res: ServerResponse, socket: Socket, bytes: number): void {
    if (socket.destroyed || res.writableFinished) return;
    const had = this.charged.get(res);
    let c = this.conns.get(socket);
    if (!c) {
      const conn: Conn = { held: 0, answers: new Set(), done: 0, queued: 0, since: Date.now() };
      c = conn;
      this.conns.set(socket, conn);
      // Answers queued behind an earlier one may see no 'close' of their own when the socket goes (one listener a socket).
      if (!this.watched.has(socket)) {
        this.watched.add(socket);
        socket.once('close', () => {
          const now = this.conns.get(socket);
          if (now) for (const r of [...now.answers]) this.release(r, now, socket);
        });
      }
      this.start();
    }
    if (had === undefined) {
      const conn = c;
      conn.answers.add(res);
      const release = (): void => this.release(res, conn, socket);
      res.once('finish', release);
      res.once('close', release);
    }
    const delta = bytes - (had ?? 0);
    this.charged.set(res, bytes);
    c.held += delta;
    this.stats.heldBytes += delta;
  }

  /** `res` written out or closed: nothing of it is counted any more. */
  private release(res: ServerResponse, conn: Conn, socket: Socket): void {
    const n = this.charged.get(res);
    if (n === undefined) return;
    this.charged.delete(res);
    conn.answers.delete(res);
    conn.held -= n;
    this.stats.heldBytes -= n;
    if (conn.answers.size === 0 && this.conns.get(socket) === conn) this.conns.delete(socket);
  }

  private start(): void {
    if (this.timer) return;
    const every = Math.min(1000, Math.max(20, Math.floor(this.deadline / 4)));
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  /** Destroys the connections whose socket took nothing for `deadline` while bytes waited. */
  private check(): void {
    const now = Date.now();
    for (const [socket, c] of this.conns) {
      if (socket.destroyed) continue;
      const done = socket.bytesWritten - socket.writableLength;
      const q = (socket as unknown as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize;
      const queued = typeof q === 'number' ? q : 0;
      // Nothing waits at the socket (an earlier answer still waits for its reply: not the client's doing), or it took bytes.
      const moved = socket.writableLength === 0 || done > c.done || (done === c.done && queued < c.queued);
      c.done = done;
      c.queued = queued;
      if (moved) c.since = now;
      else if (now - c.since > this.deadline) {
        this.stats.cut++;
        socket.destroy();
      }
    }
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

const ofNode = new WeakMap<MeshNode, ReplyMemory>();

/** The node's ReplyMemory (one for every HTTP API of the node). */
export function replyMemory(node: MeshNode): ReplyMemory {
  let m = ofNode.get(node);
  if (!m) ofNode.set(node, (m = new ReplyMemory(node)));
  return m;
}
