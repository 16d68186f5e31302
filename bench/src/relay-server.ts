/**
 * The ceiling of the bench (`relay` target): a byte relay that copies the
 * publisher's PUB bytes to every subscriber connection, with no parsing
 * and no routing. Run as its own process:
 *
 *   node bench/dist/relay-server.js --port P
 *
 * It speaks only as much of the meshbus protocol as the SDK needs to talk to
 * it: HELLO → WELCOME, PING → PONG (so `flush()` works), SUB marks a
 * connection as a subscriber (`_INBOX.` patterns excepted). To find the PINGs
 * among the PUBs it scans frame boundaries only: the 4-byte length and the
 * type byte of each frame (5 bytes read per frame; no magic, CRC, topic or
 * payload check). Runs of whole-or-partial PUB frames are written to each
 * subscriber socket as the very bytes read (views of the input chunk, no
 * copy), which is what a node delivers for a plain event (SPEC §10.3: the
 * original PUB bytes, sid 0; this relay does not stamp origin/seq).
 *
 * Its process sets glibc's allocator as `meshbus start` does (native
 * `tuneAllocator`), so node and ceiling read through Node under the same
 * conditions.
 *
 * Limits: one publisher per subscriber stream (runs of two publishers would
 * interleave mid-frame: the bench uses it on 1 → 1 only); frames of
 * 64 B..16 MiB (else the connection is closed). Backpressure like a node's
 * flow control: while a subscriber socket is over its high-water mark the
 * relay stops reading the publisher's socket.
 */
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { FrameType, VERSION, encodeBody, encodeFrame } from '@meshbus/proto';
import { tuneAllocator } from '@meshbus/native';

const FIXED = 64;
const MAX_FRAME = 16 * 1024 * 1024;
const NODE_ID = 'feedfacecafebeef';

let nextClient = 1;
const subscribers = new Set<RelayConn>();

/** One client connection: handshake, then the frame-boundary scan. */
class RelayConn {
  private handshaken = false;
  /** Bytes of the current PUB frame still to forward. */
  private fwdLeft = 0;
  /** A control frame being collected (PING, SUB, HELLO…), and how much of it is in. */
  private ctl: Buffer | undefined;
  private ctlHave = 0;
  /** Up to 7 bytes of a frame prefix cut by a chunk boundary. */
  private stash = Buffer.alloc(8);
  private stashLen = 0;
  /** Subscribers whose 'drain' this connection's reads wait for. */
  private readonly blockedOn = new Set<RelayConn>();

  constructor(private readonly sock: Socket) {
    sock.setNoDelay(true);
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => subscribers.delete(this));
  }

  private onData(c: Buffer): void {
    let i = 0;
    let run = -1; // start of the PUB bytes of this chunk not yet forwarded
    const n = c.length;
    while (i < n) {
      if (this.fwdLeft > 0) {
        const k = Math.min(this.fwdLeft, n - i);
        if (run < 0) run = i;
        i += k;
        this.fwdLeft -= k;
        continue;
      }
      if (this.ctl) {
        const k = Math.min(this.ctl.length - this.ctlHave, n - i);
        c.copy(this.ctl, this.ctlHave, i, i + k);
        this.ctlHave += k;
        i += k;
        if (this.ctlHave === this.ctl.length) {
          const f = this.ctl;
          this.ctl = undefined;
          this.control(f);
        }
        continue;
      }
      // A frame boundary: the length (bytes 0..3) and the type (byte 7).
      if (this.stashLen + (n - i) < 8) {
        // The chunk ends inside the next frame's first 8 bytes: keep them for the next chunk, forward only what came before.
        c.copy(this.stash, this.stashLen, i, n);
        this.stashLen += n - i;
        break;
      }
      let len: number;
      let type: number;
      let head = this.stashLen;
      if (head === 0) {
        len = c.readUInt32BE(i);
        type = c[i + 7]!;
      } else {
        c.copy(this.stash, head, i, i + 8 - head);
        len = this.stash.readUInt32BE(0);
        type = this.stash[7]!;
      }
      const total = 4 + len;
      if (total < FIXED || total > MAX_FRAME) {
        this.sock.destroy();
        return;
      }
      if (type === FrameType.PUB && this.handshaken) {
        if (head > 0) {
          // The cut prefix: forward it (a copy) before the rest of the frame.
          if (run >= 0) this.forward(c.subarray(run, i));
          run = -1;
          this.forward(Buffer.from(this.stash.subarray(0, head)));
        } else if (run < 0) run = i;
        this.stashLen = 0;
        this.fwdLeft = total - head;
        continue;
      }
      // Any other frame: everything before it goes out first (PONG after the PUBs it answers for).
      if (run >= 0) this.forward(c.subarray(run, i));
      run = -1;
      this.ctl = Buffer.allocUnsafe(total);
      this.stash.copy(this.ctl, 0, 0, head);
      this.ctlHave = head;
      this.stashLen = 0;
      head = 0;
    }
    if (run >= 0) this.forward(c.subarray(run, i));
  }

  /** Writes PUB bytes to every subscriber; pauses this socket while one is full. */
  private forward(bytes: Buffer): void {
    for (const s of subscribers) {
      if (s === this) continue;
      if (!s.sock.write(bytes) && !this.blockedOn.has(s)) {
        if (this.blockedOn.size === 0) this.sock.pause();
        this.blockedOn.add(s);
        const go = (): void => {
          s.sock.off('drain', go);
          s.sock.off('close', go);
          this.blockedOn.delete(s);
          if (this.blockedOn.size === 0) this.sock.resume();
        };
        s.sock.once('drain', go);
        s.sock.once('close', go);
      }
    }
  }

  private control(f: Buffer): void {
    const type = f[7]!;
    if (!this.handshaken) {
      if (type !== FrameType.HELLO) {
        this.sock.destroy();
        return;
      }
      this.handshaken = true;
      const client = (nextClient++).toString(16).padStart(16, '0');
      const body = { v: VERSION, node: NODE_ID, client, maxPayload: 1024 * 1024, maxTopic: 256, ping: 20_000, peers: [] };
      this.sock.write(encodeFrame({ type: FrameType.WELCOME, payload: encodeBody(body) }));
      return;
    }
    if (type === FrameType.PING) this.sock.write(encodeFrame({ type: FrameType.PONG, correlation: f.readUInt32BE(40) }));
    else if (type === FrameType.SUB) {
      const topic = f.toString('latin1', FIXED, FIXED + f.readUInt16BE(44));
      if (!topic.startsWith('_INBOX.')) subscribers.add(this);
    } else if (type === FrameType.GOODBYE) this.sock.end();
    // UNSUB, PONG, AUTH, …: ignored (the bench does not use them mid-run).
  }
}

function main(): void {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  // The same C allocator settings as a node's process (meshbus start): the ceiling reads through
  // Node's per-read buffers as a node does, and must not be held down by page faults a node avoids.
  tuneAllocator();
  const server = createServer((s) => new RelayConn(s));
  server.listen(Number(values.port ?? 0), values.host ?? '127.0.0.1', () => {
    const a = server.address();
    process.stderr.write(`relay listening on ${typeof a === 'object' && a ? a.port : '?'}\n`);
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}

main();
