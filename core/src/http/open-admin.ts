import { isIP } from 'node:net';
import type { MeshNode } from '../node.js';

/** Default port of the HTTP API. */
export const DEFAULT_HTTP_PORT = 8480;

/** True for an interface only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^::ffff:127\./.test(h);
}

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
