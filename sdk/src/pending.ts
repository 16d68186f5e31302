import type { MeshbusError } from '@meshbus/proto';
import type { Codec } from './codecs.js';
import type { Msg } from './msg.js';

/**
 * Something waiting for the node's answer under a correlation id: a
 * request (its reply, or an ERROR), a flush (PONG), an acked publish
 * (ACK/NACK, see durable.ts). `timer` is the caller's deadline, cleared when
 * the entry leaves the table.
 */
export interface Correlated {
  readonly kind: 'request' | 'flush' | 'ack';
  /** The correlation id; 0 until the entry is sent. */
  id: number;
  reject(e: MeshbusError): void;
  timer?: ReturnType<typeof setTimeout>;
}

/** A request waiting for its reply (sent when `id` is set; else it waits for a connection). */
export interface PendingRequest extends Correlated {
  readonly kind: 'request';
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string> | undefined;
  codec: Codec | undefined;
  /** 128 random bits (hex) in the reply topic `_INBOX.<client>.<id>.<token>`: a reply without them is not this request's. */
  replyToken?: string;
  resolve(m: Msg): void;
}

export interface PendingFlush extends Correlated {
  readonly kind: 'flush';
  resolve(): void;
}

/**
 * The one correlation table of a client, and its id source. Subscription
 * ids, heartbeat pings and the inbox subscription share the id space, so
 * `nextId` also skips the ids the caller says are taken.
 */
export class PendingTable {
  private readonly byId = new Map<number, Correlated>();
  private lastId = 0;
  /** Acked publishes in the table, and who waits for there to be none (acksSettled). */
  private acks = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly taken: (id: number) => boolean) {}

  /** A 32-bit id (never 0) used by nothing in flight. */
  nextId(): number {
    for (;;) {
      this.lastId = this.lastId >= 0xffffffff ? 1 : this.lastId + 1;
      const id = this.lastId;
      if (!this.byId.has(id) && !this.taken(id)) return id;
    }
  }

  /** Gives `e` a fresh id and records it; returns the id. */
  add(e: Correlated): number {
    e.id = this.nextId();
    this.byId.set(e.id, e);
    if (e.kind === 'ack') this.acks++;
    return e.id;
  }

  /** The entry of `kind` waiting under `id`, left in place; undefined when there is none. */
  peek<T extends Correlated>(id: number, kind: T['kind']): T | undefined {
    const e = this.byId.get(id);
    return e === undefined || e.kind !== kind ? undefined : (e as T);
  }

  /** The entry of `kind` waiting under `id`, removed (its timer cleared); undefined when there is none. */
  take<T extends Correlated>(id: number, kind: T['kind']): T | undefined {
    const e = this.byId.get(id);
    if (e === undefined || e.kind !== kind) return undefined;
    this.remove(e);
    return e as T;
  }

  /** Removes `e` if it is in the table, and clears its timer. */
  remove(e: Correlated): void {
    if (e.timer !== undefined) clearTimeout(e.timer);
    if (e.id !== 0 && this.byId.get(e.id) === e) {
      this.byId.delete(e.id);
      if (e.kind === 'ack' && --this.acks === 0) this.wake();
    }
  }

  /**
   * Resolves once no acked publish waits for its ACK: each leaves by its
   * answer, its own timer (`ackTimeout`) or the connection's loss
   * (failAll). drain() waits for them.
   */
  acksSettled(): Promise<void> {
    return this.acks === 0 ? Promise.resolve() : new Promise<void>((r) => this.waiters.push(r));
  }

  private wake(): void {
    for (const r of this.waiters.splice(0)) r();
  }

  /** Rejects and removes every entry: they were sent on a connection that is gone (outcome unknown). */
  failAll(err: MeshbusError): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    this.acks = 0;
    this.wake();
    for (const e of all) {
      if (e.timer !== undefined) clearTimeout(e.timer);
      e.reject(err);
    }
  }
}

export { parseReply, replyToken } from './reply-token.js';
