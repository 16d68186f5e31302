import type { Frame, FrameScanner } from '@meshbus/proto';
import type { ClientSession } from './client-session.js';
import type { Durability } from './durable/durability.js';
import type { Logger } from './logger.js';
import type { JwtVerifier } from './auth/jwt.js';
import type { ResolvedOptions } from './options.js';
import type { RoutingTable } from './routing-table.js';
import type { NodeStats } from './stats.js';

/** What a session needs from its node; keeps sessions testable and the node's surface small. */
export interface NodeContext {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly table: RoutingTable;
  readonly stats: NodeStats;
  readonly logger: Logger;
  readonly scanner: FrameScanner;
  readonly maxFrameLength: number;
  newClientId(): string;
  /** Redis-backed durability; undefined when the node runs without Redis. */
  readonly durability?: Durability;
  /** Verifies client JWTs when the node is configured for them. */
  readonly jwt: JwtVerifier | undefined;
  peerUrls(): string[];
  /** Routes an event (PUB or REQ) a client published. */
  publish(from: ClientSession, frame: Frame): void;
  opened(session: ClientSession): void;
  closed(session: ClientSession): void;
}
