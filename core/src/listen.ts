import type { Server } from 'node:net';
import { ConfigError } from './config-error.js';

/**
 * Which listener of a node a port error names: `port` starts "<port> port P
 * on H is already in use" (empty for the client port), `label` ends "cannot
 * listen for <label> on H:P".
 */
export interface ListenerName {
  port: string;
  label: string;
}

/**
 * A port that could not be opened (in use, not permitted, no such address).
 * A ConfigError like any other start-up failure, but of the machine's state
 * rather than of the options: the CLI exits 1 for it (the port may free up,
 * a restart can help) and 2 for a bad option (it cannot).
 */
export class ListenError extends ConfigError {}

/**
 * The ConfigError of a listener that could not open: "… port P on H is
 * already in use" for EADDRINUSE (the CLI and tests match that phrase), else
 * "cannot listen for … on H:P: <reason>". One wording for every port of a
 * node (clients, peers, HTTP, WebSocket).
 */
export function listenError(e: NodeJS.ErrnoException, name: ListenerName, host: string, port: number): ListenError {
  return e.code === 'EADDRINUSE'
    ? new ListenError(`${name.port ? `${name.port} ` : ''}port ${port} on ${host} is already in use`)
    : new ListenError(`cannot listen for ${name.label} on ${host}:${port}: ${e.message}`);
}

/**
 * Opens `server` on host:port and resolves the port it got (the OS picks
 * one for port 0). Rejects with listenError's ConfigError. `exclusive`: in a
 * node:cluster worker, bind in this process instead of sharing the
 * primary's handle (a port only this worker listens on: node:cluster would
 * give every worker's port 0 the same port).
 */
export function listenOn(server: Server, port: number, host: string, name: ListenerName, exclusive = false): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(listenError(e, name, host, port));
    server.once('error', onError);
    server.listen({ port, host, exclusive }, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** The HTTP API's listener (its own server or fastify's). */
export const HTTP_LISTENER: ListenerName = { port: 'http', label: 'HTTP' };
