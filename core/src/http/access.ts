import type { FastifyReply, FastifyRequest } from 'fastify';
import { sameSecret } from '../auth/same-secret.js';
import { isThisMachineName } from '../loopback.js';
import type { AuthThrottle } from '../auth/auth-throttle.js';
import { HttpError } from './http-errors.js';

/**
 * The only routes answered without the admin token: the probes, the metrics
 * and the dashboard page (which asks for the token before it calls /v1/*).
 * Everything else is protected by default, including routes added later and
 * the not-found handler, so an unknown path answers 401 before 404 and does
 * not reveal what exists.
 */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', '/', '/dashboard']);

/** Methods an open route answers without a token (HEAD is fastify's automatic twin of GET). */
const OPEN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/**
 * Content types a browser sends cross-site without a CORS preflight (the
 * "simple request" types). A POST with one of them, or with none, is refused:
 * a web page could otherwise make a visitor's browser publish on the node.
 */
const SIMPLE_TYPES: ReadonlySet<string> = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/** Methods subject to the content-type and Origin rules: POST is the only one a browser sends cross-site without a preflight, and the only one the API has. */
const POST_ONLY: ReadonlySet<string> = new Set(['POST']);

/**
 * Whether `req` may pass without the admin token. Decided on the route the
 * router matched (`routeOptions.url`, the registered pattern), never on the
 * raw request target: percent-encoding, absolute-form targets, dot segments
 * or double slashes cannot make a protected route look open.
 */
export function isOpenRoute(req: FastifyRequest, prefix = ''): boolean {
  const route = unprefixed(req.routeOptions.url, prefix);
  return route !== undefined && OPEN_ROUTES.has(route) && OPEN_METHODS.has(req.method);
}

/**
 * A matched route pattern without the plugin's registration prefix ('/' for
 * the prefix itself, as fastify registers '/' under a prefix); undefined when
 * it is not under the prefix (then it is not one of the API's open routes).
 */
function unprefixed(route: string | undefined, prefix: string): string | undefined {
  if (route === undefined || prefix === '') return route;
  if (route === prefix || route === `${prefix}/`) return '/';
  return route.startsWith(`${prefix}/`) ? route.slice(prefix.length) : undefined;
}

/**
 * The onRequest check of the HTTP API, in this order:
 * 1. admin token (when one is set): every route but OPEN_ROUTES needs
 *    `Authorization: Bearer <token>` (401 MB_ERR_AUTH_FAILED without it,
 *    403 MB_ERR_PERMISSION_DENIED for a wrong one; compared in constant time
 *    over SHA-256 digests, so neither length nor content leaks). A wrong
 *    token is charged to the caller's address in `throttle` (the node's
 *    failed-auth limiter, shared with clients and peers); an address out of
 *    attempts gets 429 MB_ERR_AUTH_THROTTLED, before its token is looked at,
 *    and the connection is closed;
 * 2. on POST: an `Origin` header, when present, must be the
 *    node's own (`<scheme>://<Host header>`), else 403 MB_ERR_PERMISSION_DENIED;
 * 3. on those methods: a Content-Type that is not a CORS simple type and not
 *    missing, else 415 MB_ERR_UNSUPPORTED_MEDIA_TYPE.
 *
 * Before all of them, with `loopbackHosts` (an open API on a loopback port):
 * a `Host` header that does not name this machine is refused with 403
 * MB_ERR_PERMISSION_DENIED, on every route. A DNS-rebinding page (its own
 * name made to resolve to 127.0.0.1) is same-origin with the API for the
 * browser, so the Origin and content-type rules let it through: it read
 * every admin view and published and requested at will.
 */
export function accessCheck(
  adminToken: string | undefined,
  scheme: 'http' | 'https',
  prefix = '',
  throttle?: AuthThrottle,
  loopbackHosts = false,
): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (req, reply) => {
    if (loopbackHosts && !isLoopbackHostHeader(req.headers.host)) {
      throw new HttpError('MB_ERR_PERMISSION_DENIED', `Host ${(req.headers.host ?? '').slice(0, 200)} is not this machine: the API runs without an admin token and answers localhost, 127.x and [::1] only`);
    }
    if (adminToken !== undefined && !isOpenRoute(req, prefix)) {
      const address = req.socket.remoteAddress ?? '?';
      const throttled = throttle?.refusal(address, 'http');
      if (throttled) {
        // Keep-alive would let the caller go on trying on the same connection: end it with the answer.
        void reply.header('connection', 'close');
        throw new HttpError(throttled.code, throttled.message);
      }
      const h = req.headers.authorization;
      const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
      if (!m) throw new HttpError('MB_ERR_AUTH_FAILED', 'missing Authorization: Bearer <admin token>');
      if (!sameSecret(m[1], adminToken)) {
        throttle?.failed(address, 'http');
        throw new HttpError('MB_ERR_PERMISSION_DENIED', 'admin token not accepted');
      }
    }
    if (!POST_ONLY.has(req.method)) return;
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, scheme, req.headers.host)) {
      throw new HttpError('MB_ERR_PERMISSION_DENIED', `cross-origin request from ${origin.slice(0, 200)} refused`);
    }
    const type = mediaType(req.headers['content-type']);
    if (type === '' || SIMPLE_TYPES.has(type)) {
      throw new HttpError(
        'MB_ERR_UNSUPPORTED_MEDIA_TYPE',
        `${type || 'a missing'} content type is refused: send the payload as e.g. application/octet-stream or application/json`,
      );
    }
  };
}

/** The lower-case media type of a Content-Type header, parameters removed; '' when absent or blank. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

function sameOrigin(origin: string, scheme: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  return origin.trim().toLowerCase() === `${scheme}://${host.trim().toLowerCase()}`;
}

/**
 * Whether a Host header names this machine: `localhost`, `*.localhost`, a
 * 127.x or ::1 address, with or without a port. A request without one
 * (HTTP/1.0; browsers always send it) is not a browser's and passes.
 */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true;
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d*)?$/.exec(host.trim().toLowerCase());
  if (!m) return false;
  return isThisMachineName(m[1]!);
}
