import { ClientError } from '@meshbus/proto';
import { BATCH_BYTES, afterTick, type Transport } from './transport.js';
import type { ServerUrl } from './servers.js';

/** The part of a WHATWG WebSocket this transport uses (the browser global and the `ws` package both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

/**
 * WebSocket transport: each binary message carries whole frames; frames
 * queued in one tick are concatenated into one message. Works with any
 * WHATWG-style constructor, so the same code runs in browsers, React Native
 * and Node (with the `ws` package).
 */
export class WsTransport implements Transport {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (reason?: Error) => void = () => {};
  private ws: WebSocketLike | undefined;
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private scheduled = false;
  private closed = false;
  /** onClose was called. */
  private notified = false;

  constructor(private readonly WebSocketCtor: WebSocketConstructor) {}

  get pendingBytes(): number {
    return this.batchBytes + (this.ws?.bufferedAmount ?? 0);
  }

  connect(server: ServerUrl, options: { timeout: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.WebSocketCtor(server.href);
      } catch (e) {
        reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: ${String((e as Error)?.message ?? e)}`, { cause: e }));
        return;
      }
      this.ws = ws;
      ws.binaryType = 'arraybuffer';
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
          this.fail(new ClientError('MB_ERR_CONNECTION_CLOSED', `${server.href}: non-binary WebSocket message`));
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
          local ? undefined : new ClientError('MB_ERR_CONNECTION_CLOSED', `${server.href}: WebSocket closed (code ${ev?.code ?? '?'}${ev?.reason ? `, ${ev.reason}` : ''})`),
        );
      };
    });
  }

  send(chunks: Uint8Array[]): void {
    if (this.closed) return;
    for (const c of chunks) {
      if (c.length === 0) continue;
      this.batch.push(c);
      this.batchBytes += c.length;
    }
    if (this.batchBytes >= BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      afterTick(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const ws = this.ws;
    if (this.batch.length === 0 || !ws || ws.readyState !== OPEN) return;
    let msg: Uint8Array;
    if (this.batch.length === 1) msg = this.batch[0]!;
    else {
      msg = new Uint8Array(this.batchBytes);
      let off = 0;
      for (const c of this.batch) {
        msg.set(c, off);
        off += c.length;
      }
    }
    this.batch = [];
    this.batchBytes = 0;
    ws.send(msg);
  };

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
    this.flush();
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
