import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import {
  FIXED_SIZE,
  FrameDecoder,
  FrameType,
  codeFromNumber,
  decodeError,
  decodeWelcome,
  encodeBody,
  encodeFrame,
  headerOf,
  topicHash,
  writeHeader,
  type ErrorCode,
  type Frame,
  type FrameSpec,
} from '@meshbus/proto';

/** A copy of the fields a test looks at; frames themselves are views valid only during the callback. */
export interface Got {
  type: number;
  typeName: string;
  topic: string;
  sid: number;
  correlation: number;
  /** Links the frame crossed (header `hops`), and the most it may. */
  hops: number;
  maxHops: number;
  /** Where an event entered the mesh (16 hex digits) and its sequence there. */
  origin: string;
  seq: number;
  payload: Buffer;
  /** The whole frame as it came (length prefix included): to send it on as it is, as a node would. */
  bytes: Buffer;
  /** Reply topic of a REQ (from its extension block). */
  reply?: string;
  /** Trace id of a traced event (extension `t`): what every receiver of it learns. */
  trace?: string;
  /** Durable position of an event (extension `p`), when it has one. */
  offset?: number;
  /** ERROR and NACK frames: the code. */
  error?: ErrorCode;
}

/**
 * What every raw test client does whatever carries its bytes: decode what
 * arrives, keep a copy of each frame, wait for frames, and send the common
 * frames. Subclasses give `send` and feed `received` / `ended`.
 */
export abstract class RawFrames {
  readonly got: Got[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  /** Sends frames (a transport may put several in one message). */
  abstract send(...specs: FrameSpec[]): void;
  /** Sends bytes as they are (one WebSocket message): frames encodeFrame would refuse to make (frameWithExt). */
  sendBytes(_bytes: Uint8Array): void {
    throw new Error(`${this.constructor.name} cannot send raw bytes`);
  }
  /** Stops / restarts reading from the socket: the node sees a reader that stopped (its kernel buffers fill). */
  pauseReading(): void {
    throw new Error(`${this.constructor.name} cannot pause`);
  }
  resumeReading(): void {
    throw new Error(`${this.constructor.name} cannot resume`);
  }

  /** Extra words for "connection closed" errors (e.g. a WebSocket close code). */
  protected closeInfo(): string {
    return '';
  }

  protected received(chunk: Uint8Array): void {
    this.decoder.push(chunk, (f) => this.onFrame(f), () => {});
    this.wake();
  }

  protected ended(): void {
    this.closed = true;
    this.wake();
  }

  private onFrame(f: Frame): void {
    const g: Got = {
      type: f.type,
      typeName: f.typeName,
      topic: f.topic,
      sid: f.sid,
      correlation: f.correlation,
      hops: f.hops,
      maxHops: f.maxHops,
      origin: f.origin,
      seq: f.seq,
      payload: Buffer.from(f.payload),
      bytes: Buffer.from(f.buf.subarray(f.start, f.end)),
    };
    if (f.type === FrameType.ERROR || f.type === FrameType.NACK) g.error = codeFromNumber(decodeError(f.payload).code);
    if (f.type === FrameType.REQ) g.reply = f.ext?.reply;
    if (f.traced) g.trace = f.ext?.trace;
    if (f.type === FrameType.PUB && f.extLen > 0) g.offset = f.ext?.position?.offset;
    this.got.push(g);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The connection's client id from WELCOME (its inbox is `_INBOX.<clientId>.`). */
  get clientId(): string {
    const w = this.got.find((g) => g.type === FrameType.WELCOME);
    if (!w) throw new Error('no WELCOME received');
    return decodeWelcome(w.payload).client;
  }

  protected async hello(hello: Record<string, unknown> | false): Promise<void> {
    if (hello === false) return;
    this.send({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], ...hello }) });
    await this.waitFor((g) => g.type === FrameType.WELCOME || g.type === FrameType.ERROR);
  }

  sub(pattern: string, sid: number, body: Record<string, unknown> = {}): void {
    this.send({ type: FrameType.SUB, topic: pattern, correlation: sid, payload: encodeBody(body) });
  }

  pub(topic: string, data: string | Uint8Array, correlation = 0, type: FrameType = FrameType.PUB): void {
    this.send({ type, topic, correlation, payload: typeof data === 'string' ? Buffer.from(data) : data });
  }

  /** Round trip through the node: every frame sent before has been processed when this resolves. */
  async flush(timeoutMs = 5000): Promise<void> {
    const n = Math.floor(Math.random() * 1e9) + 1;
    this.send({ type: FrameType.PING, correlation: n });
    await this.waitFor((g) => g.type === FrameType.PONG && g.correlation === n, timeoutMs);
  }

  /** Waits (bounded) until a received frame satisfies `pred`, and returns it. */
  async waitFor(pred: (g: Got) => boolean, timeoutMs = 5000): Promise<Got> {
    let hit: Got | undefined;
    await this.waitUntil(() => (hit = this.got.find(pred)) !== undefined, '', timeoutMs);
    return hit!;
  }

  /**
   * Waits (bounded) until `cond()` holds, checked after each chunk received:
   * in the read path, so a reader told to stop then (`pauseReading`) stops
   * before its next read. A poll on a timer let a fast reader read on, up to
   * everything queued for it, before it looked.
   */
  async waitUntil(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const got = (): string => `${what ? ` waiting for ${what}` : ''}; got ${this.got.map((g) => g.typeName).join(',')}`;
    while (!cond()) {
      if (this.closed) throw new Error(`connection closed${this.closeInfo()}${got()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out${got()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  events(topic?: string): Got[] {
    return this.got.filter((g) => (g.type === FrameType.PUB || g.type === FrameType.REQ) && (topic === undefined || g.topic === topic));
  }
}

/**
 * A protocol client made of raw frames over a real socket, so the node's tests
 * do not depend on the SDK and can send anything, including garbage.
 */
export class RawClient extends RawFrames {
  private constructor(readonly socket: net.Socket) {
    super();
    socket.on('data', (c) => this.received(c));
    socket.on('close', () => this.ended());
    socket.on('error', () => {});
  }

  /** `localAddress`: the connection's source address (any 127.x address on Linux: another host, as a node counts hosts). */
  static async connect(port: number, hello: Record<string, unknown> | false = {}, localAddress?: string): Promise<RawClient> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(sock));
      sock.once('error', reject);
    });
    const c = new RawClient(s);
    await c.hello(hello);
    return c;
  }

  /** Over TLS (a node's `tls` client port), trusting `ca`. */
  static async connectTls(port: number, ca: string, hello: Record<string, unknown> | false = {}): Promise<RawClient> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => resolve(sock));
      sock.once('error', reject);
    });
    const c = new RawClient(s);
    await c.hello(hello);
    return c;
  }

  send(...specs: FrameSpec[]): void {
    for (const spec of specs) this.socket.write(encodeFrame(spec));
  }

  override sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  override pauseReading(): void {
    this.socket.pause();
  }

  override resumeReading(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** RawClient's twin over WebSocket: raw frames in binary messages. */
export class RawWs extends RawFrames {
  closeCode = 0;
  closeReason = '';

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer) => this.received(data));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.ended();
    });
    ws.on('error', () => {});
  }

  static async connect(url: string, o: { hello?: Record<string, unknown> | false; origin?: string; ws?: WebSocket.ClientOptions } = {}): Promise<RawWs> {
    const ws = new WebSocket(url, { ...(o.origin ? { origin: o.origin } : {}), ...o.ws });
    // Listen before 'open': a refusal's ERROR can arrive in the same chunk as the upgrade response.
    const c = new RawWs(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await c.hello(o.hello ?? {});
    return c;
  }

  send(...specs: FrameSpec[]): void {
    // All frames in one binary message (SPEC §2 allows several whole frames per message).
    this.ws.send(Buffer.concat(specs.map((s) => encodeFrame(s))));
  }

  override sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  override pauseReading(): void {
    this.ws.pause();
  }

  override resumeReading(): void {
    this.ws.resume();
  }

  /** Drops the connection at once (no close handshake). */
  close(): void {
    this.ws.terminate();
  }

  protected override closeInfo(): string {
    return ` (${this.closeCode})`;
  }
}

/**
 * A subscriber of `pattern` (SUB body `body`, e.g. `{ slow: 'drop' }`) over
 * `kind` that stops reading once the node has its SUB: a slow consumer that
 * never drains. The caller closes it.
 */
export async function stuckSubscriber(
  node: { port: number; wsPort: number },
  kind: 'TCP' | 'WebSocket',
  pattern: string,
  body: Record<string, unknown>,
): Promise<RawClient | RawWs> {
  const s = kind === 'TCP' ? await RawClient.connect(node.port) : await RawWs.connect(`ws://127.0.0.1:${node.wsPort}/`);
  s.sub(pattern, 1, body);
  await s.flush();
  s.pauseReading();
  return s;
}

/**
 * A publisher flooding `topic` with random `size`-byte events over `pub` as
 * fast as its node reads them (waiting while the socket's buffer is full,
 * yielding every 32 events), at most `max` events: a source for flow-control
 * tests. `stop()` ends it; `sent` counts what it wrote.
 */
export function floodPublisher(pub: RawClient, topic: string, size = 4096, max = 1_000_000): { readonly sent: number; stop(): Promise<void> } {
  let stop = false;
  let sent = 0;
  const data = randomBytes(size);
  const done = (async () => {
    while (!stop && sent < max) {
      if (pub.socket.writableNeedDrain) await new Promise((r) => setTimeout(r, 2));
      else {
        pub.pub(topic, data);
        if (++sent % 32 === 0) await new Promise((r) => setImmediate(r));
      }
    }
  })();
  return {
    get sent() {
      return sent;
    },
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

/** A frame whose extension block is `ext` verbatim (encodeFrame writes only valid blocks): for tests of malformed ones. */
export function frameWithExt(spec: FrameSpec, ext: Uint8Array): Uint8Array {
  const topic = Buffer.from(spec.topic ?? '');
  const payload = spec.payload ?? new Uint8Array(0);
  const out = new Uint8Array(FIXED_SIZE + topic.length + ext.length + payload.length);
  writeHeader(out, 0, headerOf(spec, topicHash(topic), topic.length, ext.length, payload.length));
  out.set(topic, FIXED_SIZE);
  out.set(ext, FIXED_SIZE + topic.length);
  out.set(payload, FIXED_SIZE + topic.length + ext.length);
  return out;
}
