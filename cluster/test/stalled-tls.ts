import { connect as netConnect, type Socket } from 'node:net';

/** A TLS handshake record header whose 512-byte body never comes. */
export const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);

/**
 * A TCP connection to `port` on 127.0.0.1 that sends `first` (the first
 * bytes of a ClientHello by default; nothing when empty) and then nothing:
 * a TLS handshake left half-way, a slow-loris. Destroyed by `cleanup`.
 */
export async function stalledConnection(port: number, cleanup: Array<() => unknown>, first: Buffer = HALF_CLIENT_HELLO): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = netConnect(port, '127.0.0.1');
  cleanup.push(() => void socket.destroy());
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  if (first.length > 0) socket.write(first);
  return { socket, closed: () => closed };
}
