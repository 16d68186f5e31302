import { ClientError, SessionError, copyBytes, type Frame } from '@meshbus/proto';
import type { MeshNode } from '../node.js';
import type { EventSource, Subscriber, Subscription, Throttled } from '../subscriber.js';

/** The first reply to a request. */
export interface Reply {
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string>;
}

interface Waiting {
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Internal subscribers take negative uids so they never collide with client sessions. */
let nextUid = -1;

/**
 * The node's own inbox for requests made from inside the node (HTTP
 * `POST /v1/request`). It is a Subscriber on `_INBOX.<node id>.http.*`,
 * subscribed on first use: each request gets reply topic
 * `_INBOX.<node id>.http.<n>` and correlation n, and waits for the first
 * reply. As a local ('client') subscription, the inbox is announced to peers
 * like any client's, so replies from other nodes find their way back.
 */
export class RequestInbox implements Subscriber, EventSource {
  readonly kind = 'client' as const;
  readonly uid = nextUid--;
  readonly congested = false;
  readonly echo = true;
  private readonly prefix: string;
  private sub: Subscription | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private next = 0;

  constructor(private readonly node: MeshNode) {
    this.prefix = `_INBOX.${node.id}.http.`;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /**
   * Publishes a request on `topic` and resolves with the first reply.
   * Rejects with SessionError MB_ERR_NO_RESPONDERS when nothing receives it,
   * ClientError MB_ERR_TIMEOUT after `timeoutMs`, or the node's error for a
   * bad topic or payload.
   */
  request(topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, timeoutMs: number): Promise<Reply> {
    this.subscribe();
    const id = this.next = this.next >= 0xffffffff ? 1 : this.next + 1;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new ClientError('MB_ERR_TIMEOUT', `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      let n: number;
      try {
        n = this.node.publishLocal(topic, payload, { headers, reply: this.prefix + id, correlation: id, from: this });
      } catch (e) {
        this.settle(id)?.reject(e as Error);
        return;
      }
      if (n === 0) this.settle(id)?.reject(new SessionError('MB_ERR_NO_RESPONDERS', `no subscriber for "${topic}"`));
    });
  }

  deliver(f: Frame, _sid: number): void {
    try {
      const topic = f.topic;
      const id = topic.startsWith(this.prefix) ? Number(topic.slice(this.prefix.length)) : f.correlation;
      const w = this.settle(id);
      if (!w) return; // late or duplicate reply
      w.resolve({ topic, payload: copyBytes(f.payload), headers: f.ext?.headers ?? {} });
    } catch {
      // A malformed reply (bad extension): the requester times out.
    }
  }

  addWaiter(_w: Throttled): void {
    // Never congested: replies are handed over at once.
  }

  blockOn(_receiver: Subscriber): void {
    // An HTTP publisher is not paused; its request simply waits for the reply.
  }

  unblock(_receiver: Subscriber): void {}

  /** Fails every request in flight and leaves the routing table. */
  close(): void {
    for (const id of [...this.waiting.keys()]) this.settle(id)?.reject(new SessionError('MB_ERR_DRAINING', 'HTTP API closing'));
    if (this.sub) this.node.table.remove(this.sub);
    this.sub = undefined;
  }

  private subscribe(): void {
    if (this.sub) return;
    this.sub = { sid: 1, pattern: `${this.prefix}*`, queue: undefined, owner: this, slow: 'drop' };
    this.node.table.add(this.sub);
  }

  private settle(id: number): Waiting | undefined {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    return w;
  }
}
