import type { ErrorCode } from '@meshbus/proto';
import type { Logger } from '../logger.js';
import { onUnparsedRequest } from '../listener-timeouts.js';
import { rawErrorAnswer } from './http-errors.js';

/**
 * The API's answer to a request Node's HTTP parser refused, by the status
 * Node gives it (listener-timeouts.ts onUnparsedRequest). Before, fastify's
 * handler (startHttp) answered `{"error":"Request Header Fields Too
 * Large","message":…,"statusCode":431}` and Node's own (the on-demand
 * listener before its first request loaded the API) an empty 400 or 431:
 * neither was the API's `{ error: { code, num, message } }`.
 */
const REFUSALS: Record<number, [code: ErrorCode, message: string]> = {
  431: ['MB_ERR_INVALID_ARGUMENT', "request line and headers larger than the server reads (Node's maxHeaderSize, 16 KiB by default)"],
  413: ['MB_ERR_PAYLOAD_TOO_LARGE', 'chunk extensions larger than the server reads'],
  408: ['MB_ERR_TIMEOUT', 'request headers not received in time'],
  400: ['MB_ERR_INVALID_ARGUMENT', 'malformed HTTP request'],
};

/**
 * The 'clientError' handler of the HTTP API's servers: fastify's
 * `clientErrorHandler` (startHttp) and the on-demand listener's from its
 * start (the same function once fastify loads there: a socket is answered
 * once).
 */
export function apiClientErrors(logger: Logger | undefined): ReturnType<typeof onUnparsedRequest> {
  return onUnparsedRequest(logger, (status) => {
    const [code, message] = REFUSALS[status] ?? REFUSALS[400]!;
    return rawErrorAnswer(status, code, message);
  });
}
