import { ClientError, type MeshbusError } from '@meshbus/proto';
import { entrySize, type OutboxLimits } from './outbox.js';
import type { PendingRequest } from './pending.js';

/**
 * Requests made while disconnected, sent on the next connection, bounded as
 * the outbox is: its limits (the defaults, 10,000 and 8 MiB, beside a custom
 * Outbox or none). Each keeps its payload until it is sent or its deadline
 * passes, so an offline loop of requests with long timeouts grew the client
 * without limit while publishes got MB_ERR_OUTBOX_FULL.
 */
export class WaitingRequests {
  readonly list: PendingRequest[] = [];
  private held = 0;
  private readonly maxMessages: number;
  private readonly maxBytes: number;

  constructor(limits: OutboxLimits = {}) {
    this.maxMessages = limits.maxMessages ?? 10_000;
    this.maxBytes = limits.maxBytes ?? 8 * 1024 * 1024;
  }

  /** Topic, payload and header bytes held (what the byte limit counts). */
  get bytes(): number {
    return this.held;
  }

  /** Appends `req`; throws ClientError MB_ERR_OUTBOX_FULL, keeping nothing, past a bound. */
  add(req: PendingRequest): void {
    const n = size(req);
    if (this.list.length >= this.maxMessages || this.held + n > this.maxBytes) {
      throw new ClientError('MB_ERR_OUTBOX_FULL', `${this.list.length} requests (${this.held} bytes) wait for a connection; limits ${this.maxMessages} and ${this.maxBytes} bytes`);
    }
    this.list.push(req);
    this.held += n;
  }

  remove(req: PendingRequest): void {
    const i = this.list.indexOf(req);
    if (i < 0) return;
    this.list.splice(i, 1);
    this.held -= size(req);
  }

  shift(): PendingRequest | undefined {
    const r = this.list.shift();
    if (r) this.held -= size(r);
    return r;
  }

  /** Rejects every waiting request with `err`, unsent (the client closes, or drains while offline). */
  rejectAll(err: MeshbusError): void {
    this.held = 0;
    for (const req of this.list.splice(0)) {
      clearTimeout(req.timer);
      req.reject(err);
    }
  }
}

function size(r: PendingRequest): number {
  return entrySize({ topic: r.topic, payload: r.payload, headers: r.headers, at: 0 });
}
