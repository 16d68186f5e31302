import { ClientError, type MeshbusError } from '@meshbus/proto';
import { asError, check, count } from './errors.js';

/** A publish made while disconnected, kept until the next connection. */
export interface OutboxEntry {
  topic: string;
  payload: Uint8Array;
  headers?: Record<string, string>;
  /** Trace id given to publish(). */
  trace?: string;
  /** Date.now() when the publish was made. */
  at: number;
}

/**
 * Where publishes wait while the client is offline. Synchronous so a
 * publish is accepted or refused at once and order is kept; a persistent
 * store (localStorage, IndexedDB with an in-memory mirror, a mobile key-value
 * store) implements the same interface and writes through.
 */
export interface Outbox {
  /** Entries stored. */
  readonly count: number;
  /** Payload + topic bytes stored. */
  readonly bytes: number;
  /** Appends `entry`; throws ClientError MB_ERR_OUTBOX_FULL (storing nothing) when the bounds refuse it. */
  add(entry: OutboxEntry): void;
  /** Removes and returns every entry, oldest first. */
  takeAll(): OutboxEntry[];
  /** Drops every entry; returns how many were dropped. */
  clear(): number;
}

export interface OutboxLimits {
  /** Most entries kept. Default 10 000. */
  maxMessages?: number;
  /** Most bytes (topic + payload + headers) kept. Default 8 MiB. */
  maxBytes?: number;
}

/** Throws ClientError MB_ERR_INVALID_ARGUMENT unless the limits given are integers >= 0 or Infinity (NaN meant no bound, a negative one refused every entry). */
export function checkLimits(l: OutboxLimits): void {
  check('outbox.maxMessages', l.maxMessages, count(0));
  check('outbox.maxBytes', l.maxBytes, count(0));
}

/** Size an entry counts for against `maxBytes`. */
export function entrySize(e: OutboxEntry): number {
  let n = e.topic.length + e.payload.length + (e.trace?.length ?? 0);
  if (e.headers) for (const k in e.headers) n += k.length + e.headers[k]!.length;
  return n;
}

/** The default outbox: an in-memory FIFO bounded by count and bytes. */
export class MemoryOutbox implements Outbox {
  readonly maxMessages: number;
  readonly maxBytes: number;
  private entries: OutboxEntry[] = [];
  private size = 0;

  constructor(limits: OutboxLimits = {}) {
    checkLimits(limits);
    this.maxMessages = limits.maxMessages ?? 10_000;
    this.maxBytes = limits.maxBytes ?? 8 * 1024 * 1024;
  }

  get count(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.size;
  }

  add(entry: OutboxEntry): void {
    const n = entrySize(entry);
    if (this.entries.length + 1 > this.maxMessages) {
      throw new ClientError('MB_ERR_OUTBOX_FULL', `${this.entries.length} messages queued, limit ${this.maxMessages}`);
    }
    if (this.size + n > this.maxBytes) {
      throw new ClientError('MB_ERR_OUTBOX_FULL', `${this.size} + ${n} bytes exceeds the limit of ${this.maxBytes}`);
    }
    this.entries.push(entry);
    this.size += n;
  }

  takeAll(): OutboxEntry[] {
    const out = this.entries;
    this.entries = [];
    this.size = 0;
    return out;
  }

  clear(): number {
    return this.takeAll().length;
  }
}

/**
 * Adds `entry` to `ob`; one that does not fit is reported (an
 * 'outbox-overflow' status through `to`) and its MB_ERR_OUTBOX_FULL rethrown:
 * a refused offline publish is never silent, plain or acked.
 */
export function addOrOverflow(ob: Outbox, entry: OutboxEntry, to: { emit(s: { type: 'outbox-overflow'; error: MeshbusError; topic: string; count: number; bytes: number }): void }): void {
  try {
    ob.add(entry);
  } catch (e) {
    const err = asError(e);
    if (err.code === 'MB_ERR_OUTBOX_FULL') to.emit({ type: 'outbox-overflow', error: err, topic: entry.topic, count: ob.count, bytes: ob.bytes });
    throw err;
  }
}

/** Whether `v` is an Outbox (the `outbox` option may also be MemoryOutbox's limits, or false). */
export function isOutbox(v: unknown): v is Outbox {
  return typeof v === 'object' && v !== null && typeof (v as Outbox).add === 'function' && typeof (v as Outbox).takeAll === 'function';
}
