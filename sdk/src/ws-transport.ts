import { ClientError, messageEnd } from '@meshbus/proto';
import type { Transport } from './transport.js';
import type { ServerUrl } from './servers.js';
import { connectionClosed, messageOf } from './errors.js';

/** The part of a WHATWG WebSocket this transport uses (the browser global and the `ws` package both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  /** `cb`: the `ws` package only (browsers ignore it): called once the message is written. */
  send(data: Uint8Array, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of a WsTransport. */
export interface WsTransportOptions {
  /**
   * The WebSocket's `binaryType`. Default 'arraybuffer' (WHATWG). The Node
   * entry passes 'nodebuffer' (the `ws` package only): messages then arrive
   * as views of the bytes read, where 'arraybuffer' makes `ws` copy every
   * message that is a view into a larger read into an ArrayBuffer of its own.
   */
  binaryType?: 'arraybuffer' | 'nodebuffer';
}

const OPEN = 1;

/**
 * WebSocket transport: each send() is one binary message of whole frames
 * (the chunks of a tick, gathered by the connection, concatenated). Works with any
 * WHATWG-style constructor, so the same code runs in browsers, React Native
 * and Node (with the `ws` package).
 */
export class WsTransport implements Transport {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (reason?: Error) => void = () => {};
  private ws: WebSocketLike | undefined;
  private closed = false;
  /** onClose was called. */
  private notified = false;

  constructor(
    private readonly WebSocketCtor: WebSocketConstructor,
    private readonly options: WsTransportOptions = {},
  ) {}

  get pendingBytes(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  connect(server: ServerUrl, options: { timeout: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.WebSocketCtor(server.href);
      } catch (e) {
        reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: ${messageOf(e)}`, { cause: e }));
        return;
      }
      this.ws = ws;
      ws.binaryType = this.options.binaryType ?? 'arraybuffer';
      let opened = false;
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        try {
          ws.close();
        } catch {
          /* already closing */
        }
        reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: no connection within ${options.timeout} ms`));
      }, options.timeout);
      ws.onopen = () => {
        if (settled) return;
        settled = true;
        opened = true;
        clearTimeout(timer);
        resolve();
      };
      ws.onmessage = (ev) => {
        const d = ev.data;
        // Tag checks rather than instanceof: the WebSocket may come from another realm (a vm context, an iframe).
        if (isArrayBuffer(d)) this.onData(new Uint8Array(d));
        else if (ArrayBuffer.isView(d)) this.onData(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        else {
          // Text messages are not part of the protocol.
          this.fail(connectionClosed(`${server.href}: non-binary WebSocket message`));
        }
      };
      ws.onerror = () => {
        /* the close event follows and carries the outcome */
      };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: WebSocket closed (code ${ev?.code ?? '?'})`));
          return;
        }
        if (!opened || this.notified) return;
        opened = false;
        this.notified = true;
        const local = this.closed;
        this.closed = true;
        this.onClose(
          local ? undefined : connectionClosed(`${server.href}: WebSocket closed (code ${ev?.code ?? '?'}${ev?.reason ? `, ${ev.reason}` : ''})`),
        );
      };
    });
  }

  send(chunks: Uint8Array[]): void {
    const ws = this.ws;
    if (this.closed || !ws || ws.readyState !== OPEN) throw connectionClosed('WebSocket is not open');
    let n = 0;
    for (const c of chunks) n += c.length;
    this.sendMessage(ws, chunks, n);
  }

  /**
   * Sends `chunks` (`bytes` in all, whole frames) over an open WebSocket, in
   * messages cut between frames (messageEnd, SPEC §2; several
   * chunks are gathered into a new buffer first). NodeWsTransport: its own
   * buffers and masking.
   */
  protected sendMessage(ws: WebSocketLike, chunks: Uint8Array[], bytes: number): void {
    const b = chunks.length === 1 ? chunks[0]! : gather(chunks, new Uint8Array(bytes));
    for (let s = 0, e = 0; s < bytes; s = e) ws.send(b.subarray(s, (e = messageEnd(b, s, bytes))));
  }

  private fail(e: Error): void {
    if (this.closed || this.notified) return;
    this.closed = true;
    this.notified = true;
    try {
      this.ws?.close(1002, 'protocol error');
    } catch {
      /* ignore */
    }
    this.onClose(e);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.ws?.close(1000);
    } catch {
      /* ignore */
    }
  }
}

function isArrayBuffer(d: unknown): d is ArrayBuffer {
  return d instanceof ArrayBuffer || Object.prototype.toString.call(d) === '[object ArrayBuffer]';
}

/** Copies `chunks` back to back into `into` (large enough); returns the bytes written, as a view of `into`. */
export function gather(chunks: Uint8Array[], into: Uint8Array): Uint8Array {
  let n = 0;
  for (const c of chunks) {
    into.set(c, n);
    n += c.length;
  }
  return n === into.length ? into : into.subarray(0, n);
}
