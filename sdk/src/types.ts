import type { ClientError, MeshbusError, Position, WelcomeBody } from '@meshbus/proto';
import type { OutboxEntry } from './outbox.js';

/** Why the client discarded a received event (status 'dropped'). */
export type DropReason = 'max-reached' | 'unsubscribed' | 'unknown-subscription' | 'no-subscriber';

export interface ClientStats {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
  reconnects: number;
  /**
   * Events received and not handed to any consumer: for a subscription past
   * its `max`, unsubscribed (or drained) before they arrived, one the client
   * does not know, or slow-consumer drops. Each is also a 'dropped' (or
   * 'slow-consumer') status event.
   */
  dropped: number;
  /**
   * Status events a `status()` iterator did not get: each keeps at most
   * STATUS_BACKLOG (1,024) waiting for its consumer, and past it drops the
   * oldest (a node can send errors faster than a consumer reads them).
   */
  statusDropped: number;
}

/** What the node said about itself and this connection in WELCOME (field meanings in proto's WelcomeBody). */
export interface ServerInfo extends Omit<WelcomeBody, 'v'> {
  /** The server URL this connection uses. */
  server: string;
  /** Protocol version chosen. */
  version: number;
}

/** Status events: `client.on('status', fn)` or `for await (const s of client.status())`. */
export type Status =
  | { type: 'connected'; server: string; info: ServerInfo; reconnected: boolean }
  | { type: 'disconnected'; server: string; error?: MeshbusError }
  | { type: 'reconnecting'; attempt: number; delay: number; server: string }
  | { type: 'slow-consumer'; source: 'client'; sid: number; pattern: string; dropped: number; pending: number }
  /**
   * From the node: `MB_ERR_SLOW_CONSUMER` (the connection is closed), or
   * `MB_ERR_EVENTS_DROPPED` with the 'drop' subscription `sid` (`pattern`
   * when still known) and the events the node `dropped` for it since its
   * last report (also added to `sub.nodeDropped`); the connection goes on.
   */
  | { type: 'slow-consumer'; source: 'node'; error: MeshbusError; sid?: number; pattern?: string; dropped?: number }
  /** `entry`: an outbox entry refused when it was flushed (e.g. over the new node's payload limit); it is not sent. */
  | { type: 'error'; error: MeshbusError; sid?: number; entry?: OutboxEntry }
  /**
   * A received event nobody here took, counted in `stats().dropped` (and the
   * subscription's `dropped` when it is known): it arrived after the
   * subscription reached `max` or was unsubscribed (use `sub.drain()` to
   * avoid that), or for a subscription the client does not know. `count`:
   * that subscription's drops so far, else the client's.
   */
  | { type: 'dropped'; reason: DropReason; sid: number; pattern?: string; topic: string; count: number }
  | { type: 'outbox-overflow'; error: ClientError; topic: string; count: number; bytes: number }
  | { type: 'outbox-flushed'; count: number }
  | { type: 'recovery'; sid: number; pattern: string; recovered: boolean; position: Position }
  | { type: 'closed'; error?: MeshbusError; unsent: number };

export type StatusType = Status['type'];
