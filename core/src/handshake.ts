import { FrameType, MAX_VERSION, MIN_VERSION, SessionError, decodeHello, encodeBody, encodeFrame, type Frame, type HelloBody, type MeshbusError, type WelcomeBody } from '@meshbus/proto';
import type { NodeContext } from './node-context.js';
import { checkHello, controlBody } from './client-limits.js';

/**
 * A client's first frame as a HELLO the node can answer: its decoded body
 * and the protocol version both sides speak. Throws SessionError
 * MB_ERR_HANDSHAKE_REQUIRED (not a HELLO), MB_ERR_BAD_BODY (undecodable),
 * MB_ERR_OUT_OF_RANGE (a bound of client-limits) or
 * MB_ERR_UNSUPPORTED_VERSION (no version in common); all are fatal.
 */
export function readHello(f: Frame): { hello: HelloBody; v: number } {
  if (f.type !== FrameType.HELLO) throw new SessionError('MB_ERR_HANDSHAKE_REQUIRED', `got ${f.typeName} before HELLO`);
  let hello: HelloBody;
  try {
    // Its size is bounded by the frame limit before the handshake (maxHelloSize); its maps and arrays here.
    hello = decodeHello(controlBody(f, Infinity));
    checkHello(hello);
  } catch (e) {
    const err = e as MeshbusError;
    throw new SessionError(err.code === 'MB_ERR_OUT_OF_RANGE' ? err.code : 'MB_ERR_BAD_BODY', err.message);
  }
  const [lo, hi] = hello.v;
  const v = Math.min(hi, MAX_VERSION);
  if (v < lo || v < MIN_VERSION) throw new SessionError('MB_ERR_UNSUPPORTED_VERSION', `client speaks ${lo}..${hi}, node ${MIN_VERSION}..${MAX_VERSION}`);
  return { hello, v };
}

/** The WELCOME frame answering HELLO `correlation`: version `v`, ids, the node's limits and the peers' client URLs. */
export function welcomeFrame(ctx: NodeContext, clientId: string, v: number, correlation: number, kind: 'tcp' | 'ws' = 'tcp'): Uint8Array {
  const o = ctx.options;
  const welcome: WelcomeBody = {
    v,
    node: ctx.id,
    client: clientId,
    maxPayload: o.maxPayload,
    maxTopic: o.maxTopicLength,
    ping: o.pingInterval,
    peers: ctx.peerUrls(kind),
  };
  return encodeFrame({ type: FrameType.WELCOME, correlation, payload: encodeBody(welcome) });
}
