import type { Frame } from '@meshbus/proto';
import type { Transport } from './transport.js';

/**
 * Frames a connection decoded while it waits for something asynchronous
 * they depend on (a token being verified): kept in arrival order and handed
 * back once the wait ends. The connection pauses its transport meanwhile,
 * so what is held is at most the rest of the chunk being decoded.
 */
export class FrameHold {
  private frames: Frame[] | undefined;

  constructor(private readonly transport: Transport) {}

  /** True while frames are being held. */
  get holding(): boolean {
    return this.frames !== undefined;
  }

  /** Starts holding (again: a no-op) and pauses the transport. */
  start(): void {
    this.frames ??= [];
    this.transport.pause();
  }

  /** Holds `f`; only while `holding`. */
  push(f: Frame): void {
    this.frames!.push(f);
  }

  /**
   * Stops holding and hands the held frames to `handle`, in order, then
   * resumes the transport when `mayResume()` (flow control may want it
   * paused). Stops early when `gone()` (the connection closed: the rest are
   * dropped) or when a handled frame started holding again (the rest stay
   * held, in front of anything held later).
   */
  release(handle: (f: Frame) => void, gone: () => boolean, mayResume: () => boolean): void {
    const held = this.frames ?? [];
    this.frames = undefined;
    for (let i = 0; i < held.length; i++) {
      if (gone()) return;
      if (this.frames) {
        (this.frames as Frame[]).unshift(...held.slice(i));
        return;
      }
      handle(held[i]!);
    }
    if (!gone() && mayResume()) this.transport.resume();
  }

  /**
   * Drops whatever is held (the connection is closing) and lets the transport
   * read again: a WebSocket's close handshake needs the peer's close frame, and
   * a transport left paused would wait for its close timeout instead.
   */
  clear(): void {
    if (this.frames === undefined) return;
    this.frames = undefined;
    this.transport.resume();
  }
}
