/**
 * Browser entry: the platform-free core plus the global WebSocket. Only
 * ws:// and wss:// servers can be used from a browser.
 */
import { connect as coreConnect, type Client } from './client.js';
import type { ConnectOptions } from './options.js';
import type { TransportFactory } from './transport.js';
import { WsTransport, type WebSocketConstructor } from './ws-transport.js';

export * from './core.js';

/** WebSocket transports from the global constructor; undefined (unusable) for TCP servers. */
export function webSocketTransport(ctor?: WebSocketConstructor): TransportFactory {
  return (server) => {
    if (server.scheme === 'tcp') return undefined;
    const C = ctor ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    return C ? new WsTransport(C) : undefined;
  };
}

export function connect(servers: string | string[], options: ConnectOptions & { WebSocket?: WebSocketConstructor } = {}): Promise<Client> {
  return coreConnect(servers, { transport: webSocketTransport(options.WebSocket), ...options });
}
