import { isNodeOnlyTopic } from '../auth/reserved-topics.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { assertHeaderName, isMeshbusError } from '@meshbus/proto';
import type { MeshNode } from '../node.js';
import { HttpError } from './http-errors.js';
import type { RequestInbox } from './inbox.js';
import type { HttpStats } from './metrics.js';
import { intParam } from './views.js';
import type { WaitingCalls } from './waiting-calls.js';
import { EVENT_BODY_CSP, eventContentType } from './served-types.js';
import { replyMemory } from './reply-memory.js';
import { StoreAnswer } from './store-answer.js';

/** Request headers `x-meshbus-h-<name>: value` travel as event header `<name>` (lower case). */
export const HEADER_PREFIX = 'x-meshbus-h-';

export interface PublishDeps {
  node: MeshNode;
  inbox: RequestInbox;
  stats: HttpStats;
  /** Default wait for a reply, ms. */
  requestTimeout: number;
  /** Largest `?timeout=` accepted, ms. */
  maxRequestTimeout: number;
  /** A request waiting for its reply is failed and answered when the API closes. */
  waiting: WaitingCalls;
}

/**
 * The event headers carried by an HTTP request; undefined when there are
 * none. A name no event can carry (`__proto__`) is refused with 400
 * MB_ERR_INVALID_ARGUMENT, as the SDK refuses it: assigned here it was
 * dropped without a word and the request answered 200.
 */
export function eventHeaders(h: IncomingHttpHeaders): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(h)) {
    if (!k.startsWith(HEADER_PREFIX) || k.length === HEADER_PREFIX.length || v === undefined) continue;
    const name = k.slice(HEADER_PREFIX.length);
    assertHeaderName(name);
    (out ??= {})[name] = fromHttpText(Array.isArray(v) ? v.join(', ') : v);
  }
  return out;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
/** What an HTTP header value may hold as Node writes it: no control characters but tab, bytes 0x80-0xFF as they are. */
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const NON_ASCII = /[^\x00-\x7f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header value as the client sent it. Node reads header bytes as Latin-1,
 * so `curl -H 'x-meshbus-h-user: José'` (UTF-8, what clients send) became
 * the event header "JosÃ©": bytes that are well-formed UTF-8 are read as
 * UTF-8; anything else stays Latin-1.
 */
function fromHttpText(v: string): string {
  if (!NON_ASCII.test(v)) return v;
  try {
    return utf8.decode(Buffer.from(v, 'latin1'));
  } catch {
    return v;
  }
}

/** An event header value as HTTP carries it: its UTF-8 bytes, one Latin-1 character each, as Node writes them (fromHttpText's inverse). */
function toHttpText(v: string): string {
  return NON_ASCII.test(v) ? Buffer.from(v, 'utf8').toString('latin1') : v;
}

/**
 * An event's headers as HTTP carries them, names lower-cased: event headers
 * keep their case and HTTP's do not, so names that differ only in case are
 * one HTTP header, their values joined with ", " (as HTTP joins repeated
 * headers; one of them used to be dropped). Names or values HTTP cannot
 * carry are left out.
 */
function httpHeaders(headers: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k) || typeof v !== 'string') continue;
    const text = toHttpText(v);
    if (!VALUE.test(text)) continue;
    const name = k.toLowerCase();
    const had = out.get(name);
    out.set(name, had === undefined ? text : `${had}, ${text}`);
  }
  return out;
}

const EMPTY = new Uint8Array(0);
const bodyBytes = (body: unknown): Uint8Array => (body instanceof Uint8Array ? body : EMPTY);

/**
 * The request's body, taken off the request (set to undefined there): a
 * route that waits after publishing keeps its request, and with it the
 * body, until the wait ends (a minute for POST /v1/request), charged to no
 * budget. Once the router has it, the node holds what it queues in the
 * outbound budget (SPEC 10.6) and nothing else.
 */
export function takeBody(req: FastifyRequest): Uint8Array {
  const body = bodyBytes(req.body);
  req.body = undefined;
  return body;
}

/**
 * `topic`, or 403 MB_ERR_PERMISSION_DENIED for one only nodes publish on
 * (`_TRACE…` hop records, `_DLQ…` dead letters: reserved-topics.ts), as the
 * client ports refuse it (client-limits.ts). `node.publishLocal` cannot
 * refuse them (the node publishes hop records and dead letters through it),
 * so every HTTP route that publishes on a caller's topic asks this first;
 * before, `POST /v1/publish/_TRACE.<id>` delivered a forged hop record to
 * that trace's owner.
 */
export function publishableTopic(topic: string): string {
  if (isNodeOnlyTopic(topic)) throw new HttpError('MB_ERR_PERMISSION_DENIED', `only nodes publish on ${topic}`);
  return topic;
}

/**
 * POST /v1/publish/:topic and POST /v1/request/:topic?timeout=ms. The body
 * is the payload, as bytes, whatever its content type; the node routes it
 * exactly like a client's PUB (or REQ).
 */
export function registerPublishRoutes(app: FastifyInstance, d: PublishDeps): void {
  const { node, inbox, stats } = d;
  const bodyLimit = node.options.maxPayload;
  const answers = replyMemory(node);

  app.post<{ Params: { topic: string } }>('/v1/publish/:topic', { bodyLimit }, async (req) => {
    if (node.draining) throw new HttpError('MB_ERR_DRAINING');
    const topic = publishableTopic(req.params.topic);
    // On a durable topic the answer waits for the store, as a client's acked PUB does (store-answer.ts).
    const from = new StoreAnswer();
    const receivers = node.publishLocal(topic, takeBody(req), { headers: eventHeaders(req.headers), from, answer: true, correlation: 1 });
    const position = await from.outcome(node);
    stats.published++;
    return position === undefined ? { topic, receivers } : { topic, receivers, position };
  });

  app.post<{ Params: { topic: string }; Querystring: { timeout?: string } }>('/v1/request/:topic', { bodyLimit }, async (req, reply) => {
    if (node.draining) throw new HttpError('MB_ERR_DRAINING');
    const timeout = intParam(req.query.timeout, 'timeout', d.requestTimeout, 1, d.maxRequestTimeout);
    const call = d.waiting.begin(reply);
    let r;
    const t0 = performance.now();
    try {
      // The body is handed to the router and taken off the request: nothing of it is held while the reply is awaited.
      r = await inbox.request(publishableTopic(req.params.topic), takeBody(req), eventHeaders(req.headers), timeout, call.signal);
    } catch (e) {
      const code = isMeshbusError(e) ? e.code : e instanceof HttpError ? e.code : undefined;
      if (code === 'MB_ERR_TIMEOUT') stats.requests.timeout++;
      else if (code === 'MB_ERR_NO_RESPONDERS') stats.requests.noResponders++;
      else if (call.signal.aborted) stats.requests.abandoned++;
      else stats.requests.failed++;
      throw e;
    } finally {
      call.end();
    }
    // A reply past the bounds on answers not read yet is dropped now, not held for a client that may never read (reply-memory.ts).
    const refused = answers.refusal(reply.raw, req.raw.socket, r.payload.byteLength);
    if (refused !== undefined) {
      stats.requests.failed++;
      throw new HttpError('MB_ERR_SLOW_CONSUMER', refused);
    }
    answers.hold(reply.raw, req.raw.socket, r.payload.byteLength);
    stats.requests.ok++;
    stats.roundTrip.observe((performance.now() - t0) / 1000);
    const headers = httpHeaders(r.headers);
    // Whatever its case (a responder writing `Content-Type`, the MIME canonical form, got application/octet-stream),
    // and only a type that cannot run as the API's origin (served-types.ts).
    reply.header('content-type', eventContentType(headers.get('content-type')));
    reply.header('content-security-policy', EVENT_BODY_CSP);
    for (const [k, v] of headers) reply.header(HEADER_PREFIX + k, v);
    return Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
  });
}
