import { ERROR_CODES, type ErrorCode } from './errors.js';
import { FrameType } from './constants.js';
import { encodeFrame } from './frame-encoder.js';
import { encodeBody, type GoodbyeBody } from './control.js';

/**
 * The one place ERROR, NACK-with-error and GOODBYE frames are built, for
 * every sender (client sessions, peer links, refused connections, durable
 * notices, the SDK), so their bodies never drift apart.
 *
 * `detail` is what went wrong in this instance; when it starts with the
 * code's own text ("<message>: …") that prefix is dropped: receivers prefix
 * the code's text themselves when they build their error (SPEC §12).
 * `correlation`: the frame at fault (or a subscription's sid), 0 for none.
 * `count`: how many events the error covers (ErrorBody `count`, e.g.
 * MB_ERR_EVENTS_DROPPED), omitted when undefined.
 */
export function errorFrame(code: ErrorCode, correlation: number, detail: string, count?: number): Uint8Array {
  return encodeFrame({ type: FrameType.ERROR, correlation, payload: errorBody(code, detail, count) });
}

/** A NACK refusing the publish acknowledged as `correlation` (same body as ERROR). */
export function nackFrame(code: ErrorCode, correlation: number, detail: string): Uint8Array {
  return encodeFrame({ type: FrameType.NACK, correlation, payload: errorBody(code, detail) });
}

/**
 * A refusal of the frame at `correlation`: its NACK when it is a PUB that
 * asked for an ACK (`nack`: SPEC 10.2, exactly one ACK or NACK), else an
 * ERROR. The one rule of the node's session, durable and no-store refusals.
 */
export function refusalFrame(code: ErrorCode, correlation: number, nack: boolean, detail: string): Uint8Array {
  return nack ? nackFrame(code, correlation, detail) : errorFrame(code, correlation, detail);
}

/** A GOODBYE: `reason` for humans, `reconnect` the client URLs to go to (omitted when undefined), `answered` as GoodbyeBody says. */
export function goodbyeFrame(code: ErrorCode, reason: string, reconnect?: string[], answered?: true): Uint8Array {
  const body: GoodbyeBody = { code: ERROR_CODES[code].num, reason };
  if (reconnect !== undefined) body.reconnect = reconnect;
  if (answered) body.answered = true;
  return encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody(body) });
}

function errorBody(code: ErrorCode, detail: string, count?: number): Uint8Array {
  const prefix = ERROR_CODES[code].message + ': ';
  const message = detail.startsWith(prefix) ? detail.slice(prefix.length) : detail;
  return encodeBody(count === undefined ? { code: ERROR_CODES[code].num, message } : { code: ERROR_CODES[code].num, message, count });
}
