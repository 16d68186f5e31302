import type { Frame, MeshbusError, Position, SubBody } from '@meshbus/proto';
import type { Connection } from './connection.js';
import type { OfflineOrder } from './offline-order.js';
import type { Outbox } from './outbox.js';
import type { PendingTable } from './pending.js';
import type { Subscription } from './subscription.js';
import type { ClientStats, Status } from './types.js';

/**
 * The seam between the client and its optional durable features
 * (durable.ts): what the client offers them, and what they add. Types only,
 * so the core, browser and mobile entries carry none of the durable code
 * unless `connect(..., { durable })` is given.
 */
export interface DurableHost {
  /** The client's outbox (its limits bound the acked publishes waiting offline); undefined with `outbox: false`. */
  readonly outbox: Outbox | undefined;
  /** Stamps what is made offline, so it is sent in the order it was made. */
  readonly order: OfflineOrder;
  readonly pending: PendingTable;
  readonly counters: ClientStats;
  /**
   * The connection to send on now; undefined while not connected (acked
   * publishes then wait for the next one). With `bytes`: ClientError
   * MB_ERR_SEND_BUFFER_FULL when that many more would pass maxPendingBytes.
   */
  live(bytes?: number): Connection | undefined;
  /** The current connection, if any (also while draining or attaching). */
  current(): Connection | undefined;
  /** The live subscription with this sid. */
  sub(sid: number): Subscription | undefined;
  emit(s: Status): void;
}

/** What the durable features add to one client. */
export interface DurableExtension {
  /**
   * An acked (or delayed) publish of checked, encoded data: resolves with
   * the node's ACK (the position, durable topics), rejects with the NACK's
   * error or MB_ERR_CONNECTION_CLOSED (outcome unknown). One a draining node
   * did not take (NACK MB_ERR_DRAINING, or unanswered at its GOODBYE) is
   * sent again on the next connection. Made while
   * disconnected, it is sent on the next connection; it throws ClientError
   * MB_ERR_OUTBOX_FULL past the outbox limits, MB_ERR_CONNECTION_CLOSED
   * with `outbox: false`.
   */
  publish(topic: string, data: Uint8Array, options: { headers?: Record<string, string>; delay?: number; at?: Date | number; ackTimeout?: number }): Promise<Position | undefined>;
  /**
   * On a new connection: sends the acked publishes that waited and were made
   * before `before` (OfflineOrder), oldest first; `step(i)` runs before each
   * (a test seam). Those not sent stay queued.
   */
  resend(conn: Connection, step: (i: number) => void, before: number): void;
  /** When the oldest acked publish waiting was made (OfflineOrder); Infinity when none waits. */
  firstSeq(): number;
  /** An ACK or NACK from the node: for an acked publish, or a resumed subscription's SUB. */
  onAck(f: Frame): void;
  /**
   * The node said GOODBYE MB_ERR_DRAINING: the acked publishes it has not
   * answered were not taken (SPEC 10.7); they wait for the next connection.
   */
  drained(): void;
  /** ACKs (ok) or NACKs a durable queue delivery. */
  settle(correlation: number, ok: boolean, reason?: string): void;
  /** Adds the durable fields (`since`, `durable`) to a subscription's SUB body; one sent while `behind` is the SUB whose answer alone ends that. */
  subBody(sub: Subscription, body: SubBody): void;
  /** The client closed: rejects the acked publishes still waiting. */
  close(err: MeshbusError): void;
}

/** `durable` from `@meshbus/sdk/durable`: builds the extension of one client. */
export type DurableFeature = (host: DurableHost) => DurableExtension;
