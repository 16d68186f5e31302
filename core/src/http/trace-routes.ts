import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { MeshNode } from '../node.js';
import type { TraceHop } from '../trace-hop.js';
import { HttpError } from './http-errors.js';
import { publishableTopic, takeBody } from './publish-routes.js';
import { intParam } from './views.js';
import { readHopRecord } from '../trace-hop.js';
import type { WaitingCalls } from './waiting-calls.js';

/**
 * POST /v1/trace/:topic?wait=ms: publishes the body as a traced event and
 * answers, after `wait` ms (default 1,000), with the hop records every node
 * on its path reported, ordered by hop count and time. The id is bound to
 * this request on the node (no client may subscribe to it or reuse it here)
 * and only records of the event published here are collected: one that
 * another node's client published with the same id is not part of the trace.
 */
export function registerTraceRoutes(app: FastifyInstance, node: MeshNode, waiting: WaitingCalls): void {
  app.post<{ Params: { topic: string }; Querystring: { wait?: string } }>('/v1/trace/:topic', async (req, reply) => {
    const call = waiting.begin(reply);
    try {
      if (node.draining) throw new HttpError('MB_ERR_DRAINING');
      const topic = publishableTopic(req.params.topic);
      const wait = intParam(req.query.wait, 'wait', 1000, 1, 30_000);
      return await traced(node, waiting, call.signal, topic, takeBody(req), wait);
    } finally {
      call.end();
    }
  });
}

/**
 * Publishes `body` on `topic` traced and collects its hop records for `wait`
 * ms, or until `signal` aborts (the caller went: the subscription and the id
 * are given up at once, not at the end of `wait`). The body is not held
 * while it waits (takeBody).
 */
async function traced(node: MeshNode, waiting: WaitingCalls, signal: AbortSignal, topic: string, body: Uint8Array, wait: number) {
  const id = randomBytes(8).toString('hex');
  const collected: TraceHop[] = [];
  const owner = {};
  node.traces.claim(owner, id);
  // The node's own subscription (kind 'internal'): announced to peers, so their hop records come back.
  const sub = node.subscribeInternal(
    `_TRACE.${id}`,
    (f) => {
      // A malformed hop record (undefined) is not a reason to fail the trace.
      const hop = readHopRecord(f.payload);
      if (hop !== undefined && hop.origin === node.id) collected.push(hop);
    },
    { label: 'http trace' },
  );
  try {
    const receivers = node.publishLocal(topic, body, { trace: id });
    // The parameter is reassigned so that the suspended function no longer holds the body.
    body = EMPTY;
    await waiting.sleep(wait, signal);
    // The API closes: answered like a request waiting for its reply, not cut off with the connection.
    if (waiting.closing) throw new HttpError('MB_ERR_DRAINING', 'HTTP API closing');
    signal.throwIfAborted();
    const hops = [...collected].sort((a, b) => a.hops - b.hops || a.in - b.in);
    return { id, topic, receivers, hops };
  } finally {
    sub.unsubscribe();
    node.traces.release(owner);
  }
}

const EMPTY = new Uint8Array(0);
