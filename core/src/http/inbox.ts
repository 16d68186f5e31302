import { randomBytes } from 'node:crypto';
import { ClientError, SessionError, copyBytes, type Frame } from '@meshbus/proto';
import type { MeshNode } from '../node.js';
import type { InternalSubscription } from '../internal-subscriber.js';

/** The first reply to a request. */
export interface Reply {
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string>;
}

interface Waiting {
  correlation: number;
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** Stops listening to the caller's abort signal. */
  done: (() => void) | undefined;
}

/** Replies the inbox refused, by reason (for metrics). */
export interface DroppedReplies {
  /** Reply topic names no request in flight: forged, late (after the timeout) or a duplicate. */
  unknownToken: number;
  /** Right reply topic, wrong correlation: not an answer to that request. */
  badCorrelation: number;
  /** A topic or extension block that cannot be decoded. */
  malformed: number;
}

/** 128 random bits per request: a reply topic nobody can guess. */
const TOKEN_BYTES = 16;
const TOKEN = /^[0-9a-f]{32}$/;

/**
 * The node's own inbox for requests made from inside the node (HTTP
 * `POST /v1/request`). It is a Subscriber on `_INBOX.<node id>.http.*`,
 * subscribed on first use. Each request gets a reply topic
 * `_INBOX.<node id>.http.<token>` where token is 128 random bits (hex) from
 * the CSPRNG, and a random non-zero 32-bit correlation. A reply is taken only
 * when its topic names a request in flight AND it carries that request's
 * correlation; the first such reply wins, every other message on the inbox is
 * dropped and counted in `dropped`. So only a receiver of the request (the
 * only ones told the token) can answer it: another client can neither guess a
 * reply topic nor answer a request it did not see. Its subscription is the
 * node's own (MeshNode.subscribeInternal, kind 'internal'): local interest,
 * announced to peers like a client's, so replies from other nodes find their
 * way back.
 */
export class RequestInbox {
  private readonly prefix: string;
  private sub: InternalSubscription | undefined;
  private readonly waiting = new Map<string, Waiting>();

  /** `dropped` counts the refused replies (the HTTP stats' object, so /metrics shows them). */
  constructor(
    private readonly node: MeshNode,
    readonly dropped: DroppedReplies = { unknownToken: 0, badCorrelation: 0, malformed: 0 },
  ) {
    this.prefix = `_INBOX.${node.id}.http.`;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /**
   * Publishes a request on `topic` and resolves with the first reply.
   * Rejects with SessionError MB_ERR_NO_RESPONDERS when nothing receives it,
   * ClientError MB_ERR_TIMEOUT after `timeoutMs`, `signal`'s reason when it
   * aborts first (the request is then forgotten: a late reply is dropped),
   * or the node's error for a bad topic or payload. `payload` is not held
   * once published: the wait keeps no reference to it (its closures are
   * made in `expect`), so a request waiting a minute for its reply costs no
   * body.
   */
  request(topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Reply> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const from = this.subscribe().subscriber;
    const token = randomBytes(TOKEN_BYTES).toString('hex');
    const correlation = randomBytes(4).readUInt32BE(0) || 1;
    const answer = this.expect(token, correlation, timeoutMs, signal);
    let n: number;
    try {
      n = this.node.publishLocal(topic, payload, { headers, reply: this.prefix + token, correlation, from });
    } catch (e) {
      this.settle(token)?.reject(e as Error);
      return answer;
    }
    if (n === 0) this.settle(token)?.reject(new SessionError('MB_ERR_NO_RESPONDERS', `no subscriber for "${topic}"`));
    return answer;
  }

  /** The wait for `token`'s reply, settled by the reply, the timeout or `signal`. */
  private expect(token: string, correlation: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const abort = (): void => void this.settle(token)?.reject(signal!.reason as Error);
      const timer = setTimeout(() => {
        this.settle(token)?.reject(new ClientError('MB_ERR_TIMEOUT', `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = signal ? (): void => signal.removeEventListener('abort', abort) : undefined;
      this.waiting.set(token, { correlation, resolve, reject, timer, done });
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /** An event on the inbox: the answer to a request in flight, or dropped and counted. */
  private readonly deliver = (f: Frame): void => {
    let topic: string;
    let headers: Record<string, string>;
    try {
      topic = f.topic;
      headers = f.ext?.headers ?? {};
    } catch {
      // An undecodable topic or extension is no answer; the requester keeps waiting.
      this.dropped.malformed++;
      return;
    }
    const token = topic.startsWith(this.prefix) ? topic.slice(this.prefix.length) : '';
    const w = TOKEN.test(token) ? this.waiting.get(token) : undefined;
    if (!w) {
      this.dropped.unknownToken++;
      return;
    }
    if (f.correlation !== w.correlation) {
      this.dropped.badCorrelation++;
      return;
    }
    this.settle(token)?.resolve({ topic, payload: copyBytes(f.payload), headers });
  };

  /** Fails every request in flight and leaves the routing table. */
  close(): void {
    for (const token of [...this.waiting.keys()]) this.settle(token)?.reject(new SessionError('MB_ERR_DRAINING', 'HTTP API closing'));
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private subscribe(): InternalSubscription {
    return (this.sub ??= this.node.subscribeInternal(`${this.prefix}*`, this.deliver, { label: 'http inbox' }));
  }

  private settle(token: string): Waiting | undefined {
    const w = this.waiting.get(token);
    if (!w) return undefined;
    this.waiting.delete(token);
    clearTimeout(w.timer);
    w.done?.();
    return w;
  }
}
