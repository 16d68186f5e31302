/**
 * A client process for the idle-connection figure (forked by footprint.ts so
 * that the node's RSS is measured alone): opens `conns` raw TCP connections
 * to 127.0.0.1:port, each writing one precomputed HELLO + SUB + PING in one
 * write, and counts one ready when its PONG arrives (the node handles a
 * connection's frames in order, so the subscription exists by then). Then
 * stays idle, answering the node's PINGs, until told to report or stop.
 *
 *   parent → child: IdleJob, then 'status' | 'stop'
 *   child → parent: {ev: 'ready', ready, failed, firstError} then {ev: 'status', open, errors}
 *
 * Source addresses: connection i binds 127.0.0.<2 + ⌊i / perAddress⌋>, so
 * each address stays under the node's default per-IP limit (1,024) and the
 * node runs with its defaults.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { FrameDecoder, FrameType, codeFromNumber, decodeError, encodeBody, encodeFrame } from '@meshbus/proto';

export interface IdleJob {
  port: number;
  /** Connections this process opens. */
  conns: number;
  /** Index of its first connection (topics and source addresses are global across processes). */
  first: number;
  /** Connections per loopback source address. */
  perAddress: number;
  /** Handshakes in flight at once. */
  concurrency: number;
  /** Give up on a connection not ready after this long. */
  timeoutMs: number;
}

export const sourceAddress = (i: number, perAddress: number): string => {
  const k = 2 + Math.floor(i / perAddress);
  return `127.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
};

/** The topic of connection i's one subscription: a distinct literal topic per connection (a per-device inbox). */
export const idleTopic = (i: number): string => `footprint.idle.${i}`;

const HELLO = encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], name: 'idle' }) });
const PING = encodeFrame({ type: FrameType.PING });
const PONG = encodeFrame({ type: FrameType.PONG });
const EMPTY_SUB = encodeBody({});

const sockets: Socket[] = [];
let closed = 0;
let firstError: string | undefined;
const noteError = (m: string): void => {
  firstError ??= m;
};

function open(job: IdleJob, i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const g = job.first + i;
    const s = tcpConnect({ host: '127.0.0.1', port: job.port, localAddress: sourceAddress(g, job.perAddress) });
    const dec = new FrameDecoder();
    let ready = false;
    const settle = (ok: boolean): void => {
      clearTimeout(t);
      if (!ready) {
        ready = true;
        resolve(ok);
      }
    };
    const t = setTimeout(() => {
      noteError(`connection ${g}: not ready after ${job.timeoutMs} ms`);
      s.destroy();
      settle(false);
    }, job.timeoutMs);
    s.once('connect', () => {
      const sub = encodeFrame({ type: FrameType.SUB, topic: idleTopic(g), correlation: 1, payload: EMPTY_SUB });
      s.write(Buffer.concat([HELLO, sub, PING]));
    });
    s.on('data', (d) =>
      dec.push(
        d,
        (f) => {
          if (f.type === FrameType.PONG) settle(true);
          else if (f.type === FrameType.PING) s.write(PONG);
          else if (f.type === FrameType.ERROR) noteError(`connection ${g}: ERROR ${codeFromNumber(decodeError(f.payload).code)}`);
        },
        (e) => noteError(`connection ${g}: ${e.message}`),
      ),
    );
    s.on('error', (e) => noteError(`connection ${g}: ${e.message}`));
    s.once('close', () => {
      closed++;
      settle(false);
    });
    sockets.push(s);
  });
}

async function run(job: IdleJob): Promise<void> {
  let next = 0;
  let ready = 0;
  let failed = 0;
  // A bounded pool of handshakes in flight: thousands at once would only measure the accept backlog.
  const lane = async (): Promise<void> => {
    while (next < job.conns) {
      const i = next++;
      if (await open(job, i)) ready++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.conns) }, lane));
  process.send!({ ev: 'ready', ready, failed, firstError });
}

process.on('message', (m: IdleJob | 'status' | 'stop') => {
  if (m === 'stop') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  } else if (m === 'status') {
    process.send!({ ev: 'status', open: sockets.length - closed, firstError });
  } else {
    run(m).catch((e: unknown) => process.send!({ ev: 'ready', ready: 0, failed: m.conns, firstError: String(e) }));
  }
});
// Never outlive the parent.
process.on('disconnect', () => process.exit(0));
