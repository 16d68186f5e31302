import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MeshNode } from '../node.js';
import { errorBody } from './http-errors.js';
import { replyMemory } from './reply-memory.js';
import { NOSNIFF } from './served-types.js';

/** Bytes of a body as fastify hands it to the server (a stream is not counted: the API sends none). */
function bodySize(payload: unknown): number {
  if (typeof payload === 'string') return Buffer.byteLength(payload);
  return payload instanceof Uint8Array ? payload.byteLength : 0;
}

/**
 * A fastify onSend hook: every answer's body is counted in the node's
 * ReplyMemory until it is written out; one that would pass a bound is
 * replaced by 503 MB_ERR_SLOW_CONSUMER (the API's error body, its own
 * headers dropped), so nothing of it is held.
 */
export function holdAnswers(node: MeshNode) {
  const memory = replyMemory(node);
  return async (_req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const why = memory.refusal(reply.raw, reply.request.raw.socket, bodySize(payload));
    if (why === undefined) {
      memory.hold(reply.raw, reply.request.raw.socket, bodySize(payload));
      return payload;
    }
    for (const name of Object.keys(reply.getHeaders())) if (!(name in NOSNIFF)) reply.removeHeader(name);
    const body = JSON.stringify(errorBody('MB_ERR_SLOW_CONSUMER', why));
    reply.code(503).header('content-type', 'application/json; charset=utf-8');
    memory.hold(reply.raw, reply.request.raw.socket, body.length);
    return body;
  };
}
