import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { decodeBody, type Frame } from '@meshbus/proto';
import type { MeshNode, TraceHop } from '../node.js';
import type { EventSource, Subscriber, Subscription, Throttled } from '../subscriber.js';
import { HttpError } from './http-errors.js';
import { intParam } from './views.js';

let nextUid = -1_000_000;

/** A node-internal subscriber on `_TRACE.<id>` collecting the hop records of one traced event. */
class TraceCollector implements Subscriber, EventSource {
  readonly kind = 'client' as const;
  readonly uid = nextUid--;
  readonly congested = false;
  readonly echo = true;
  readonly label = 'http trace';
  readonly hops: TraceHop[] = [];
  deliver(f: Frame): void {
    try {
      this.hops.push(decodeBody(f.payload) as unknown as TraceHop);
    } catch {
      // A malformed hop record is not a reason to fail the trace.
    }
  }
  addWaiter(_w: Throttled): void {}
  blockOn(_r: Subscriber): void {}
  unblock(_r: Subscriber): void {}
}

/**
 * POST /v1/trace/:topic?wait=ms: publishes the body as a traced event and
 * answers, after `wait` ms (default 1,000), with the hop records every node
 * on its path reported, ordered by hop count and time.
 */
export function registerTraceRoutes(app: FastifyInstance, node: MeshNode): void {
  app.post<{ Params: { topic: string }; Querystring: { wait?: string } }>('/v1/trace/:topic', async (req) => {
    if (node.draining) throw new HttpError('MB_ERR_DRAINING');
    const wait = intParam(req.query.wait, 'wait', 1000, 1, 30_000);
    const id = randomBytes(8).toString('hex');
    const collector = new TraceCollector();
    const sub: Subscription = { sid: 1, pattern: `_TRACE.${id}`, queue: undefined, owner: collector, slow: 'drop' };
    node.table.add(sub);
    try {
      const body = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
      const receivers = node.publishLocal(req.params.topic, body, { trace: id });
      await new Promise((r) => setTimeout(r, wait));
      const hops = [...collector.hops].sort((a, b) => a.hops - b.hops || a.in - b.in);
      return { id, topic: req.params.topic, receivers, hops };
    } finally {
      node.table.remove(sub);
    }
  });
}
