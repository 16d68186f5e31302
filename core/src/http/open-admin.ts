import type { MeshNode } from '../node.js';
import { isLoopbackHost } from '../loopback.js';

export { isLoopbackHost };

/** Default port of the HTTP API. */
export const DEFAULT_HTTP_PORT = 8480;

/**
 * Why an HTTP API without an admin token must not start, or undefined when it
 * may: a host other hosts can reach, or a node whose clients need a token
 * (the API would be a way around it).
 */
export function openAdminRefusal(node: MeshNode, host: string): string | undefined {
  if (!isLoopbackHost(host)) return `the HTTP API on non-loopback host ${host} needs an admin token`;
  if (node.options.token !== undefined || node.options.jwt !== undefined) return 'the HTTP API of a node that requires client tokens needs an admin token';
  return undefined;
}
