import type { ErrorCode } from '@meshbus/proto';
/**
 * A byte pipe to one client, whatever carries it (TCP socket, WebSocket).
 * Sessions write frames to a Transport and never see the transport.
 */
export interface Transport {
  /** "ip:port" of the other end, for logs and views. */
  readonly remote: string;
  /** 'tcp' or 'ws', for metrics. */
  readonly kind: 'tcp' | 'ws';
  /** Bytes accepted by write() and not yet handed to the operating system. */
  readonly buffered: number;
  /**
   * Queues `chunk`, then `tail` when given: one frame in two parts (a
   * rewritten header and the rest as received), which a message-based
   * transport keeps in one message (SPEC §2: a frame never spans two
   * WebSocket messages). Writes of one tick leave in one system call.
   */
  write(chunk: Uint8Array, tail?: Uint8Array): void;
  /**
   * Queues the bytes `buf[start, end)`, like `write(buf.subarray(start, end))`
   * without making that view (a node's deliveries are ranges of input chunks;
   * see TickBatch). Optional: without it the caller makes the view.
   */
  writeRange?(buf: Uint8Array, start: number, end: number): void;
  /**
   * False once nothing written can reach the other end any more (the socket
   * destroyed, reset or ended): the outbound queue then keeps what waits (to
   * count it as lost at the close) instead of handing it to a dead wire.
   * Optional: without it a transport is taken as writable.
   */
  readonly writable?: boolean;
  /**
   * The frames just written carry `n` more events: told by the outbound
   * queue after each event (or run) it hands over, for a transport that
   * counts its unsent events by message (WebSocket). Optional: TCP finds
   * them in the bytes it still holds at the close (unsent-events.ts).
   */
  countEvents?(n: number): void;
  /**
   * Events handed over (countEvents) that the system had not taken whole
   * when the transport closed, or never got: lost with it, counted by the
   * outbound queue at the close (discard). Read once, at the close.
   */
  readonly unsentEvents?: number;
  /** Flushes what is queued, then closes; `reason` is the fatal ERROR or GOODBYE code that ends it, if any (WebSocket close codes follow it). */
  end(reason?: ErrorCode): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  /** Stops reading (flow control toward a publisher that outruns its receivers). */
  pause(): void;
  resume(): void;
  /**
   * Bounds what a message-based transport reads, in bytes, while it is set
   * (WebSocket: everything the client sends, framing included; past it the
   * transport stops reading and reports MB_ERR_FRAME_TOO_LARGE): a number
   * until the handshake is done, undefined to lift it (the transport's
   * configured message limit still applies). Stream transports (TCP) need
   * not implement it: their decoder bounds the pre-handshake frame.
   */
  limitInput?(maxBytes: number | undefined): void;
}

/** Callbacks a transport gives its session. */
export interface TransportEvents {
  data(chunk: Uint8Array): void;
  /** The wire took queued bytes: the session may write more. */
  drain(): void;
  close(): void;
  /**
   * Bytes the transport now holds of input not yet delivered (a WebSocket
   * message's fragments and unfinished frame): charged to the node's input
   * budget (SPEC 9.5). Stream transports deliver bytes as they arrive and
   * never call it.
   */
  held?(bytes: number): void;
}
