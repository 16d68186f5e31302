import type { Socket } from 'node:net';

/**
 * Frames smaller than this on average are gathered into one buffer per tick
 * (one copy, one write); larger ones go out as a writev without a copy.
 */
const GATHER_MAX_AVG = 1024;

/**
 * Writes one tick's batch of frames to `socket`, preceded by `head` (a
 * WebSocket frame header; none over TCP): the one place the node's wires
 * hand bytes to a socket. Small frames are concatenated into a single write;
 * large ones are corked into a single writev without a copy (measured,
 * bench/README.md "Profile": the per-chunk stream bookkeeping and the
 * per-iovec cost of a writev of hundreds of small frames were the largest
 * share of a node's CPU). A WebSocket message is written the same way, its
 * header first, instead of concatenated into fresh memory for `ws.send`.
 *
 * Memory: a frame handed over uncopied is a view of the input chunk it
 * arrived in, and keeps that whole chunk alive while the socket holds it.
 * Once the socket is backed up (bytes from earlier writes still unsent),
 * every chunk that covers less than half of its buffer is copied before the
 * socket keeps it (`detached`), so what a slow reader pins is at most twice
 * what the limits count. A reader that keeps up costs no copy.
 *
 * `done` is the last write's callback. Returns the batch's bytes as the
 * socket holds them, in order (without `head`).
 */
export function writeBatch(socket: Socket, chunks: Uint8Array[], bytes: number, done: (err?: Error | null) => void, head?: Uint8Array): Uint8Array[] {
  const n = chunks.length;
  const backedUp = socket.writableLength > 0;
  let held: Uint8Array[];
  if (n === 1) held = [backedUp ? detached(chunks[0]!) : chunks[0]!];
  else if (bytes <= n * GATHER_MAX_AVG) held = [Buffer.concat(chunks, bytes)];
  else {
    held = chunks;
    if (backedUp) for (let i = 0; i < n; i++) chunks[i] = detached(chunks[i]!);
  }
  const m = held.length;
  if (m === 1 && head === undefined) {
    socket.write(held[0]!, done);
    return held;
  }
  socket.cork();
  if (head !== undefined) socket.write(head);
  for (let i = 0; i < m; i++) socket.write(held[i]!, i === m - 1 ? done : undefined);
  socket.uncork();
  return held;
}

/**
 * `chunk` itself when it owns (most of) its memory, else a copy: a small
 * view must not keep a large input chunk alive while it waits in a buffer.
 */
export function detached(chunk: Uint8Array): Uint8Array {
  return chunk.byteLength * 2 >= chunk.buffer.byteLength ? chunk : Buffer.from(chunk);
}
