/**
 * What the HTTP API's answers say about their bodies' types (core README,
 * "HTTP API"). The API is same-origin with the dashboard and, behind an
 * admin token, with whatever a browser holds for it: a body a browser
 * renders as a page there (HTML, SVG, XML, a script) runs as the API.
 * Before, `POST /v1/request` served the reply's bytes with the responder's
 * own `content-type`: any client allowed to answer a subject picked
 * `text/html` for the API's origin.
 */

/** Sent with every answer of the API, errors included: a browser never guesses a type (HTML sniffed out of JSON or event bytes). */
export const NOSNIFF: Readonly<Record<string, string>> = { 'x-content-type-options': 'nosniff' };

/**
 * Sent with a body of event bytes (a request's reply): were a browser to
 * render it anyway, it runs as an opaque origin with nothing allowed.
 */
export const EVENT_BODY_CSP = "sandbox; default-src 'none'";

/** Served for event bytes whose named type is absent or could render as active content. */
export const OPAQUE_TYPE = 'application/octet-stream';

/**
 * Media types a responder may name for its reply: data a browser shows or
 * downloads, never a document that runs script (no HTML, XHTML, SVG, XML,
 * XSL, JavaScript, PDF or anything unknown). An allow-list: a type a
 * browser renders actively tomorrow is not on it.
 */
const PASSIVE = /^(?:text\/(?:plain|csv)|application\/(?:json|[a-z0-9.-]+\+json|octet-stream|(?:x-|vnd\.)?msgpack|cbor|(?:x-)?protobuf|gzip|zip)|image\/(?:png|jpeg|gif|webp|avif)|(?:audio|video)\/[a-z0-9.+-]+)$/;

/**
 * The Content-Type the API serves event bytes with, given the type the
 * event names (its `content-type` header): that type (lower-cased, with its
 * charset if it has a plain one, other parameters dropped) when it is on the
 * passive list, else application/octet-stream.
 */
export function eventContentType(named: string | undefined): string {
  if (named === undefined) return OPAQUE_TYPE;
  const [base = '', ...params] = named.split(';');
  const type = base.trim().toLowerCase();
  if (!PASSIVE.test(type)) return OPAQUE_TYPE;
  for (const p of params) {
    const m = /^\s*charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?\s*$/i.exec(p);
    if (m) return `${type}; charset=${m[1]!.toLowerCase()}`;
  }
  return type;
}
