import { ClientError } from '@meshbus/proto';
import type { Connection } from './connection.js';
import { connectionClosed } from './errors.js';

/**
 * Default bound on a connected client's unsent bytes (ClientOptions
 * `maxPendingBytes`): 64 MiB, the figure nats-server holds per connection
 * before it closes a slow consumer (`max_pending`), here on the sending side.
 */
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

/** How often whenWritable() looks at the connection's unsent bytes, ms (a browser WebSocket has no drain event). */
const POLL = 5;

/**
 * `conn`, unless `bytes` more would take its unsent bytes past `max`: then
 * ClientError MB_ERR_SEND_BUFFER_FULL (nothing is sent). One event always
 * goes when nothing waits, however large. `max`: default DEFAULT_MAX_PENDING_BYTES. Unsent: what the client gave the
 * connection that the OS (TCP) or the WebSocket has not taken yet.
 */
export function withRoom(conn: Connection | undefined, bytes: number, max = DEFAULT_MAX_PENDING_BYTES): Connection | undefined {
  if (conn && !conn.fits(bytes, max)) throw new ClientError('MB_ERR_SEND_BUFFER_FULL', `${conn.unsent} B unsent + ${bytes} > maxPendingBytes ${max}`);
  return conn;
}

/**
 * Resolves once the current connection's unsent bytes are at most `below`,
 * or when there is no connection (publishes then go to the outbox, which
 * has its own bounds), always from a timer (the event loop runs between).
 * Rejects MB_ERR_CONNECTION_CLOSED once the client is closed.
 */
export function whenWritable(host: { live(): Connection | undefined; readonly state: string }, below: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const look = (): void => {
      if (host.state === 'closed') return reject(connectionClosed('client is closed'));
      const conn = host.live();
      if (!conn || conn.unsent <= below) return resolve();
      setTimeout(look, POLL);
    };
    // Always from a timer, never in the caller's turn: a loop of "publish; on MB_ERR_SEND_BUFFER_FULL or
    // MB_ERR_OUTBOX_FULL await whenWritable()" whose condition already held spun for ever, the socket and the
    // reconnect timers never served (an event larger than half the bound; offline with the outbox full).
    setTimeout(look, 0);
  });
}
