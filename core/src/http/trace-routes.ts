import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { MeshNode, TraceHop } from '../node.js';
import { HttpError } from './http-errors.js';
import { publishableTopic } from './publish-routes.js';
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
    waiting.track(reply);
    if (node.draining) throw new HttpError('MB_ERR_DRAINING');
    const topic = publishableTopic(req.params.topic);
    const wait = intParam(req.query.wait, 'wait', 1000, 1, 30_000);
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
      const body = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
      const receivers = node.publishLocal(topic, body, { trace: id });
      await waiting.sleep(wait);
      // The API closes: answered like a request waiting for its reply, not cut off with the connection.
      if (waiting.closing) throw new HttpError('MB_ERR_DRAINING', 'HTTP API closing');
      const hops = [...collected].sort((a, b) => a.hops - b.hops || a.in - b.in);
      return { id, topic: req.params.topic, receivers, hops };
    } finally {
      sub.unsubscribe();
      node.traces.release(owner);
    }
  });
}
