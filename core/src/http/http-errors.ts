import { STATUS_CODES } from 'node:http';
import { ERROR_CODES, isMeshbusError, type ErrorCode } from '@meshbus/proto';
import { NOSNIFF } from './served-types.js';

/**
 * HTTP statuses of meshbus error codes: one table, so the HTTP API answers a
 * given failure with the same code whichever path raised it. Codes not listed
 * map by kind: protocol errors 400, everything else 500.
 */
const STATUS: Partial<Record<ErrorCode, number>> = {
  MB_ERR_BAD_TOPIC: 400,
  MB_ERR_BAD_BODY: 400,
  MB_ERR_BAD_EXTENSION: 400,
  MB_ERR_INVALID_ARGUMENT: 400,
  MB_ERR_NOT_DURABLE: 400,
  MB_ERR_AUTH_FAILED: 401,
  MB_ERR_TOKEN_EXPIRED: 401,
  MB_ERR_PERMISSION_DENIED: 403,
  MB_ERR_NOT_FOUND: 404,
  MB_ERR_UNKNOWN_SUBSCRIPTION: 404,
  MB_ERR_FRAME_TOO_LARGE: 413,
  MB_ERR_PAYLOAD_TOO_LARGE: 413,
  MB_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  MB_ERR_RATE_LIMITED: 429,
  MB_ERR_AUTH_THROTTLED: 429,
  MB_ERR_TOO_MANY_SUBSCRIPTIONS: 429,
  MB_ERR_INTERNAL: 500,
  MB_ERR_CONFIG: 500,
  // No subscriber for a request: the service is unavailable right now and a
  // retry may succeed (NATS reports no-responders with status 503 too).
  MB_ERR_NO_RESPONDERS: 503,
  MB_ERR_DRAINING: 503,
  MB_ERR_NOT_READY: 503,
  MB_ERR_TOO_MANY_CONNECTIONS: 503,
  MB_ERR_INPUT_BUDGET: 503,
  // An HTTP answer refused at the bound on answers not read yet (reply-memory.ts): retry once clients read.
  MB_ERR_SLOW_CONSUMER: 503,
  MB_ERR_STORE_UNAVAILABLE: 503,
  // A store quota reached (SPEC 15.8): neither stored nor delivered; room comes back as jobs are taken and topics reclaimed.
  MB_ERR_STORE_FULL: 507,
  MB_ERR_CONNECTION_CLOSED: 503,
  MB_ERR_TIMEOUT: 504,
};

/** The HTTP status for a meshbus error code. */
export function httpStatus(code: ErrorCode): number {
  return STATUS[code] ?? (ERROR_CODES[code].kind === 'protocol' ? 400 : 500);
}

/** The JSON body of every error answer: `{ error: { code, num, message } }`, never a stack. */
export interface ErrorBody {
  error: { code: ErrorCode; num: number; message: string };
}

export function errorBody(code: ErrorCode, message?: string): ErrorBody {
  const def = ERROR_CODES[code];
  return { error: { code, num: def.num, message: message ?? def.message } };
}

/**
 * A whole HTTP/1.1 error answer in the API's format, as bytes to write on a
 * socket no server response owns (a connection refused on accept, a
 * request the HTTP parser refused): the connection closes after it.
 */
export function rawErrorAnswer(status: number, code: ErrorCode, message: string): string {
  const body = JSON.stringify(errorBody(code, message));
  const nosniff = Object.entries(NOSNIFF).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${nosniff}connection: close\r\n\r\n${body}`;
}

/** Thrown by route handlers; the error handler turns it into its status and JSON body. */
export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
  ) {
    super(message ?? ERROR_CODES[code].message);
  }
}

/** Fastify's own errors (body parsing, URL decoding) mapped to meshbus codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MB_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MB_ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MB_ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MB_ERR_INVALID_ARGUMENT',
  FST_ERR_BAD_URL: 'MB_ERR_INVALID_ARGUMENT',
  FST_ERR_ASYNC_CONSTRAINT: 'MB_ERR_INVALID_ARGUMENT',
  FST_ERR_VALIDATION: 'MB_ERR_INVALID_ARGUMENT',
};

/**
 * Classifies anything a route threw: a meshbus error keeps its code, a
 * fastify client error (4xx) becomes MB_ERR_INVALID_ARGUMENT or its mapped
 * code, anything else is MB_ERR_INTERNAL with a generic message (the detail
 * goes to the log, never to the client). `internal` is true for the last kind.
 */
export function classify(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof HttpError || isMeshbusError(err)) {
    const code = (err as { code: ErrorCode }).code;
    return { status: httpStatus(code), body: errorBody(code, (err as Error).message), internal: false };
  }
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  const mapped = typeof e?.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return { status: httpStatus(mapped), body: errorBody(mapped, String(e.message ?? '')), internal: false };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: errorBody('MB_ERR_INVALID_ARGUMENT', String(e.message ?? '')), internal: false };
  }
  return { status: 500, body: errorBody('MB_ERR_INTERNAL'), internal: true };
}
