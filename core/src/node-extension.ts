import type { Frame, SubBody } from '@meshbus/proto';
import type { Logger } from './logger.js';
import type { NodeStats, NodeTimings } from './stats.js';
import type { EventSource, Subscriber, Subscription } from './subscriber.js';

/**
 * The extension seam of a node: the only way a feature that is not routing
 * (today: Redis durability) takes part in what the node does with frames.
 * Routing, sessions, flow control and wires import this module and nothing of
 * the extension itself; the node loads an extension's code only when it is
 * configured (durability: `await import()` in `listen()`, only with
 * `durable.redis`), so a node without it never loads ioredis or bullmq.
 *
 * The seam is what durability does to the node, in the order the node calls it:
 *
 * | hook | called by | when |
 * |---|---|---|
 * | `start()` / `stop()` | the node | after the client listener is bound / after it closed |
 * | `match(frame)` | the node | every PUB/REQ, after routing checks, before stamping; non-null = the extension takes it |
 * | `publish(frame, match, from)` | the node | for a matched event, already stamped: the extension stores it, delivers it through `ExtensionHost.deliverAccepted` and answers the publisher's ACK/NACK itself |
 * | `subscription(owner, sid, pattern, body)` | a session | on SUB, before the subscription is routed: a Subscription of its own, or undefined for a plain one; throws a typed error for a SUB it cannot serve |
 * | `subscribed(owner, sub, body, isCurrent)` | a session | once the subscription routes (recovery, queue consumer, latest values) |
 * | `unsubscribed(sub)` | a session | when a subscription ends, whatever ended it |
 * | `clientAck(owner, frame)` | a session | ACK/NACK from a client: true when it settled something of the extension's |
 * | `answersOwed(from)` | the node's drain | before a client's GOODBYE: waits until its acked publishes are answered (SPEC 10.7) |
 *
 * Hooks must not throw except where said (subscription); asynchronous work
 * catches its own errors. The HTTP API needs no hook: it is a fastify plugin
 * (`@meshbus/core/http`) over the node's public methods (publishLocal,
 * the routing table for its reply inbox, connections, stats).
 */
export interface NodeExtension<M = unknown> {
  /** What is special about this published frame for the extension; null: an ordinary event the node routes itself. */
  match(f: Frame): M | null;
  /** Takes a matched, stamped event: stores, delivers (deliverAccepted) and acknowledges it. */
  publish(f: Frame, m: M, from: ExtensionPublisher): void;
  /** A Subscription of the extension's for this SUB, or undefined for an ordinary one. Throws a typed error (MeshbusError) to refuse the SUB. */
  subscription(owner: ExtensionSession, sid: number, pattern: string, body: SubBody): Subscription | undefined;
  /** The subscription is in the routing table. `isCurrent()` turns false once it is replaced or gone. */
  subscribed(owner: ExtensionSession, sub: Subscription, body: SubBody, isCurrent: () => boolean): void;
  /** The subscription ended. */
  unsubscribed(sub: Subscription): void;
  /** A client's ACK/NACK; false when it names nothing of the extension's. */
  clientAck(owner: ExtensionSession, f: Frame): boolean;
  /** Resolves once every acked publish `from` handed to publish() has its ACK/NACK sent; undefined when none waits. */
  answersOwed?(from: object): Promise<void> | undefined;
  /** Connects (e.g. to Redis); resolves once the extension serves or has logged why it cannot yet. */
  start(): Promise<void>;
  /** Releases every connection and timer; called once, after the listener closed. */
  stop(): Promise<void>;
}

/** A client connection as an extension sees it. */
export interface ExtensionSession extends Subscriber, EventSource {
  send(chunk: Uint8Array): void;
  readonly isOpen: boolean;
  /** Counts bytes the extension keeps for this connection outside its queue against the connection's bound; false: they do not fit, do not keep them. */
  reserve(size: number): boolean;
  /** Gives back bytes taken with reserve(). */
  unreserve(size: number): void;
  /** The connection's token rules, if any: whether some event a pattern matches is one it may not receive. */
  readonly permissions?: { filtersSubscription(pattern: string): boolean };
}

/** Who published an event an extension takes: a session (it can be sent ACK/NACK), a node-internal publisher, or nobody (a due delayed publish). */
export type ExtensionPublisher = (Subscriber & EventSource & { send?(chunk: Uint8Array): void }) | undefined;

/** What an extension may use of its node. */
export interface ExtensionHost {
  readonly logger: Logger;
  readonly stats: NodeStats;
  /** Where durations are reported (durable write latency). */
  readonly timings: NodeTimings;
  /** Routes and delivers an accepted event (to peers too: they are receivers in the routing table). */
  deliverAccepted(f: Frame, from?: Subscriber & EventSource): number;
  /** True from the start of the node's stop (shutdown or close), before any session is told GOODBYE or cut. */
  readonly draining: boolean;
  /** Publishes a node-made event (e.g. dead letters). */
  publishLocal(topic: string, payload: Uint8Array, o?: { headers?: Record<string, string> }): number;
}
