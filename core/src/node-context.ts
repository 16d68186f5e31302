import type { ErrorCode, Frame, FrameScanner } from '@meshbus/proto';
import type { Logger } from './logger.js';
import type { InputBudget } from './input-budget.js';
import type { JwtVerifier } from './auth/jwt.js';
import type { NodeExtension } from './node-extension.js';
import type { ResolvedOptions } from './options.js';
import type { RoutingTable } from './routing-table.js';
import type { NodeStats } from './stats.js';
import type { EventSource, Subscriber } from './subscriber.js';
import type { Transport } from './transport.js';
import type { TraceGuard } from './trace-guard.js';
import type { AuthThrottle } from './auth/auth-throttle.js';

/**
 * A client session as its node sees it: what the node uses of the sessions
 * it routes for (ClientSession implements it). An interface of its own so
 * this module does not import the session (no client-session ↔ node-context cycle).
 */
export interface SessionRef extends Subscriber, EventSource {
  readonly clientId: string;
  readonly name: string;
  readonly transport: Transport;
  /** Queues raw bytes for the client. */
  send(chunk: Uint8Array): void;
  /** Sends an ERROR (or a NACK for an ACK-requested publish) with `code`, answering `correlation`. */
  sendError(code: ErrorCode, correlation: number, message: string): void;
}

/** What a session needs from its node; keeps sessions testable and the node's surface small. */
export interface NodeContext {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly table: RoutingTable;
  readonly stats: NodeStats;
  readonly logger: Logger;
  readonly scanner: FrameScanner;
  readonly maxFrameLength: number;
  /** The node-wide budget for unfinished input (SPEC 9.5). */
  readonly inputBudget: InputBudget;
  newClientId(): string;
  /** Redis-backed durability (through the extension seam); undefined when the node runs without Redis. */
  readonly durability?: NodeExtension;
  /** Verifies client JWTs when the node is configured for them. */
  readonly jwt: JwtVerifier | undefined;
  /** Failed authentications per remote address, shared by clients, peers and the HTTP API. */
  readonly authThrottle: AuthThrottle;
  /** Which connection owns each trace id used on this node, and who may read hop records. */
  readonly traces: TraceGuard;
  peerUrls(kind?: 'tcp' | 'ws'): string[];
  /** Routes an event (PUB or REQ) a client published. */
  publish(from: SessionRef, frame: Frame): void;
  /**
   * `publish` for a PUB whose header and topic repeat those of the event
   * before it (the scanner's SCAN_REPEAT), which `publish` took into the run
   * still open: joins the run with what each event gets (stamp, counts).
   * False when it cannot (the table changed, the run ended or is full): the
   * session checks and publishes it as any other.
   */
  publishRepeat(from: SessionRef, frame: Frame): boolean;
  /**
   * Delivers the events `publish` kept as a run (publish-run.ts). A session
   * calls it when its input chunk is done and before anything else it does
   * or sends, so a run never outlives the callback that read it.
   */
  flushRun(): void;
  opened(session: SessionRef): void;
  closed(session: SessionRef): void;
}
