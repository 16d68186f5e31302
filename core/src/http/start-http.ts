import type { MeshNode } from '../node.js';
import type { HttpOptions, HttpServer } from './http-options.js';

/**
 * The HTTP API of `node` on a port of its own (see http-server.ts
 * `listenHttp`): fastify is loaded by the first call, not by importing
 * `@meshbus/core/http`, so a process that imports the API but starts it
 * later (the CLI: after the client listener is up) or never pays nothing
 * for it before. Throws ConfigError for bad options, a port in use or an
 * open API where it must not be open.
 */
export async function startHttp(node: MeshNode, options: HttpOptions = {}): Promise<HttpServer> {
  const { listenHttp } = await import('./http-server.js');
  return listenHttp(node, options);
}
