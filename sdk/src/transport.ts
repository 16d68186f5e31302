import type { ServerUrl } from './servers.js';

/**
 * A byte pipe to one node. The protocol client (client.ts) is written once
 * above this interface; TCP (Node) and WebSocket (browser, mobile, Node)
 * implement it. A transport is used for one connection only.
 */
export interface Transport {
  /** Opens the connection; rejects (a MeshbusError) when it cannot. */
  connect(server: ServerUrl, options: { timeout: number }): Promise<void>;
  /**
   * Queues the chunks of one frame (e.g. `[head, payload]`). Frames queued in
   * the same tick leave in one write (TCP writev / one WebSocket message);
   * chunks are not copied before that write, so callers must not reuse them.
   */
  send(chunks: Uint8Array[]): void;
  /** Called with each chunk received. The chunk is owned by the receiver. */
  onData: (chunk: Uint8Array) => void;
  /** Called once when the connection ends, with the cause when it was not a local close(). */
  onClose: (reason?: Error) => void;
  /** Closes the connection after writing what is queued. Idempotent. */
  close(): void;
  /** Bytes queued and not yet handed to the OS / WebSocket. */
  readonly pendingBytes: number;
}

/** Builds the transport for a server, or undefined when its scheme is not supported here. */
export type TransportFactory = (server: ServerUrl) => Transport | undefined;

/** Flush a batch early once this many bytes are queued, rather than at the end of the tick. */
export const BATCH_BYTES = 64 * 1024;

/** Runs `fn` after the current synchronous code (a microtask), on every platform. */
export function afterTick(fn: () => void): void {
  // void: the callbacks given here (batch flush, uncork) only write to a socket whose state
  // they check first, and cannot throw, so this promise cannot reject. (A catch would cost
  // bytes the browser bundle's budget does not have.)
  void Promise.resolve().then(fn);
}
