import WebSocket from 'ws';
import { connect as coreConnect, type Client } from './client.js';
import type { ConnectOptions } from './options.js';
import type { TransportFactory } from './transport.js';
import { TcpTransport } from './tcp-transport.js';
import { WsTransport, type WebSocketConstructor } from './ws-transport.js';

/** Node transports: TCP for meshbus:// / tcp:// / host:port, the `ws` package for ws:// and wss://. */
export const nodeTransport: TransportFactory = (server) => {
  if (server.scheme === 'tcp') return new TcpTransport();
  return new WsTransport(WebSocket as unknown as WebSocketConstructor);
};

/**
 * Connects to a meshbus node from Node.js.
 *
 *     const client = await connect('127.0.0.1:4480');
 */
export function connect(servers: string | string[], options: ConnectOptions = {}): Promise<Client> {
  return coreConnect(servers, { transport: nodeTransport, ...options });
}
