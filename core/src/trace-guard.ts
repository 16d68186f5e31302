import { SessionError, isTraceId, type Frame } from '@meshbus/proto';
import { readHopRecord } from './trace-hop.js';

/**
 * Trace ids one owner may hold at once; past it the oldest is released. A
 * tracer needs a few; the bound keeps the worst case (every connection
 * claiming ids it never uses) at about 3 KB per connection.
 */
export const MAX_TRACES_PER_OWNER = 32;

const TRACE_DOT = '_TRACE.';

/**
 * Binds trace ids to whoever started them on this node (SPEC 10.9).
 *
 * A trace id travels in the traced event, so every receiver of that event
 * learns it. Knowing it must give nobody the records, nor a way to add to
 * them. So, per node:
 *
 * - the first connection (or node-internal tracer) that uses an id, by a
 *   SUB `_TRACE.<id>` or a traced PUB/REQ carrying it, owns it until it
 *   closes; another connection's use of it is refused
 *   (MB_ERR_PERMISSION_DENIED);
 * - a hop record on `_TRACE.<id>` reaches a client only when the traced
 *   event entered the mesh at this node (the record's `origin`) and that
 *   client owns the id here. Records of a trace started on another node, or
 *   of an event someone else published with the same id elsewhere, are not
 *   delivered, whichever node the tracer and the forger are on.
 *
 * A subscriber whose token explicitly allows a `_TRACE` pattern (an
 * operator's monitor) receives every record it covers, and its
 * subscriptions claim nothing. Memory: one map entry per id held, at most
 * MAX_TRACES_PER_OWNER per owner.
 */
export class TraceGuard {
  private readonly owners = new Map<string, object>();
  /** Ids each owner holds, oldest first. */
  private readonly held = new Map<object, string[]>();

  constructor(
    /** This node's id (16 hex digits), compared with a record's `origin`. */
    private readonly nodeId: string,
    private readonly perOwner = MAX_TRACES_PER_OWNER,
  ) {}

  /** Ids held now, all owners together. */
  get size(): number {
    return this.owners.size;
  }

  /**
   * Takes trace id `id` for `owner` (no-op when it already holds it).
   * Throws SessionError MB_ERR_PERMISSION_DENIED when another owner holds it.
   */
  claim(owner: object, id: string): void {
    const current = this.owners.get(id);
    if (current === owner) return;
    if (current !== undefined) throw new SessionError('MB_ERR_PERMISSION_DENIED', `trace id ${id} belongs to another connection`);
    this.owners.set(id, owner);
    let ids = this.held.get(owner);
    if (ids === undefined) this.held.set(owner, (ids = []));
    ids.push(id);
    if (ids.length > this.perOwner) this.owners.delete(ids.shift()!);
  }

  /** Releases every id `owner` holds (its connection closed). */
  release(owner: object): void {
    const ids = this.held.get(owner);
    if (ids === undefined) return;
    this.held.delete(owner);
    for (const id of ids) if (this.owners.get(id) === owner) this.owners.delete(id);
  }

  /**
   * Whether hop record `f` (an event on a `_TRACE.` topic) may reach
   * `owner`: the traced event entered the mesh here and `owner` holds its
   * id. A record that cannot be read reaches nobody.
   */
  mayReceive(owner: object, f: Frame): boolean {
    const topic = f.topic;
    if (!topic.startsWith(TRACE_DOT)) return false;
    const id = topic.slice(TRACE_DOT.length);
    if (!isTraceId(id) || this.owners.get(id) !== owner) return false;
    return recordOrigin(f) === this.nodeId;
  }
}

/** The `origin` of a hop record, or undefined when its payload is not a record. */
export function recordOrigin(f: Frame): string | undefined {
  const origin = readHopRecord(f.payload)?.origin;
  return typeof origin === 'string' ? origin : undefined;
}
