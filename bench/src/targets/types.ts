/**
 * One interface for every system under test. The parent process uses the
 * server side (probe, start); worker processes use the client side (connect).
 */
/** `relay` is the ceiling: a byte relay, not a broker (targets/relay.ts). */
export type TargetName = 'meshbus' | 'nats' | 'redis' | 'relay';

export const TARGETS: readonly TargetName[] = ['meshbus', 'nats', 'redis', 'relay'];

/** The servers of one run: one URL per node, stopped together. */
export interface Servers {
  /** Client URL of each node (host:port). */
  urls: string[];
  /** WebSocket URL of each node (ws://host:port), when the target serves WebSocket clients. */
  wsUrls?: string[];
  /** PID of each node's process when this harness started it (for RSS); undefined for a server it only reached. */
  pids: Array<number | undefined>;
  /** How the servers were obtained, for the report. */
  note: string;
  stop(): Promise<void>;
}

/** A connection of a benchmark client. Every target implements the same verbs the same way. */
export interface BenchClient {
  /** Queues one event (no await): the client's own fast path. */
  publish(topic: string, data: Buffer): void;
  /** Resolves once the server has processed everything published before (the pacing point). */
  flush(): Promise<void>;
  /** Subscribes and resolves once the server has registered the subscription. */
  subscribe(topic: string, onMsg: (data: Uint8Array) => void): Promise<void>;
  /** Subscribes every pattern (callbacks that do nothing) and resolves once the server has them all (one flush). */
  fill(patterns: string[]): Promise<void>;
  /** Subscribes each pattern and unsubscribes it at once (a client whose subscriptions come and go), then flushes. */
  churn(patterns: string[]): Promise<void>;
  /** Serves `topic`: echoes each request's payload as the reply. */
  serve(topic: string): Promise<void>;
  /** One request/reply round trip. */
  request(topic: string, data: Buffer, timeoutMs: number): Promise<Uint8Array>;
  /** Count of connection losses seen (slow-consumer kicks, resets). */
  readonly disconnects: number;
  close(): Promise<void>;
}

export interface Target {
  readonly name: TargetName;
  /** Whether a cluster (2 or 3 nodes) can be started for the cross-node scenarios; else the reason it cannot. */
  clusterSupport(): Promise<true | string>;
  /** Whether this target runs `sc` at all (default: every scenario); scenarios it does not support leave no row. */
  supports?(sc: { id: string; ceiling?: boolean }): boolean;
  /** undefined when the target can run here, else a message saying why it is skipped. */
  unavailable(): Promise<string | undefined>;
  start(nodes: 1 | 2 | 3): Promise<Servers>;
  connect(url: string): Promise<BenchClient>;
}
