import { ERROR_CODES, type ErrorCode } from '@meshbus/proto';

/** Close codes the gateway uses (RFC 6455 §7.4.1; 1013 from the IANA registry). */
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;

/**
 * The close code that ends a WebSocket connection for meshbus error `reason`
 * (SPEC §2): none (client GOODBYE, normal end) 1000; MB_ERR_DRAINING 1001;
 * a frame or payload over the size limit 1009; any other protocol error
 * (malformed frame, frame before HELLO) 1002; MB_ERR_TOO_MANY_CONNECTIONS,
 * MB_ERR_INPUT_BUDGET and MB_ERR_NOT_READY (a token left unchecked: the node's
 * signing keys unavailable) 1013; MB_ERR_INTERNAL / MB_ERR_CONFIG / MB_ERR_STORE_UNAVAILABLE 1011; any
 * other session error (auth failed, token expired, permission, handshake
 * timeout, slow consumer, stale connection) 1008. A text message is 1003
 * (WsTransport decides that one itself). The close reason is the error code name;
 * the ERROR frame sent before the close carries the number and detail.
 */
export function wsCloseCode(reason: ErrorCode | undefined): number {
  switch (reason) {
    case undefined:
      return WS_CLOSE.NORMAL;
    case 'MB_ERR_DRAINING':
      return WS_CLOSE.GOING_AWAY;
    case 'MB_ERR_FRAME_TOO_LARGE':
    case 'MB_ERR_PAYLOAD_TOO_LARGE':
      return WS_CLOSE.TOO_BIG;
    case 'MB_ERR_HANDSHAKE_REQUIRED':
      return WS_CLOSE.PROTOCOL_ERROR;
    case 'MB_ERR_TOO_MANY_CONNECTIONS':
    case 'MB_ERR_INPUT_BUDGET':
    case 'MB_ERR_NOT_READY':
      return WS_CLOSE.TRY_AGAIN_LATER;
    case 'MB_ERR_INTERNAL':
    case 'MB_ERR_CONFIG':
    case 'MB_ERR_STORE_UNAVAILABLE':
      return WS_CLOSE.INTERNAL_ERROR;
    default:
      return ERROR_CODES[reason].kind === 'protocol' ? WS_CLOSE.PROTOCOL_ERROR : WS_CLOSE.POLICY;
  }
}
