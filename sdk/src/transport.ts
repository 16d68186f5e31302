import type { FrameScanner } from '@meshbus/proto';
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
   * Writes `chunks` now, in order, as one write (TCP: one writev; WebSocket:
   * one message). The transport does not batch: the connection above it
   * (connection.ts) is the one layer that gathers a tick's frames. Chunks
   * may be held until the OS takes them, so callers must not reuse them.
   * Throws (a MeshbusError) when the connection can no longer write.
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
  /**
   * The frame scanner for what this transport receives, read once connect()
   * resolved; undefined: proto's own. The Node transports give the native
   * addon's when it loaded (native-scanner.ts).
   */
  readonly scanner?: FrameScanner | undefined;
}

/** Builds the transport for a server, or undefined when its scheme is not supported here. */
export type TransportFactory = (server: ServerUrl) => Transport | undefined;
