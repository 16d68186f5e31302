import { Frame, FrameType, codeFromNumber, decodeError, decodePubAck, type PubAckBody } from '@meshbus/proto';
import { InternalSubscriber } from '../internal-subscriber.js';
import type { MeshNode } from '../node.js';
import { HttpError } from './http-errors.js';

/**
 * The publisher of one `POST /v1/publish`: it hears what the node tells a
 * client's acked PUB (MeshNode.publishLocal with `answer`), so an event on a
 * durable topic is answered once the store has it, with its position, or
 * refused with the store's code (SPEC 15.8: not stored, not delivered).
 * Before, the route answered 200 `{ receivers: 1 }` while the write was
 * still under way: an event Redis never stored (Redis down, a quota
 * reached) was answered as taken, and lost.
 */
export class StoreAnswer extends InternalSubscriber {
  private answer: Uint8Array | undefined;

  constructor() {
    super('http');
  }

  /** The node's ACK or NACK (the first frame it sends this publisher; it sends no other). */
  send(chunk: Uint8Array): void {
    this.answer ??= chunk;
  }

  /**
   * Waits for the store's answer when the event went to the store (bounded
   * by the store's write deadline, which NACKs): its position, or undefined
   * for a plain topic's event (delivered already). Throws HttpError with the
   * store's code when it refused the event (MB_ERR_STORE_UNAVAILABLE 503,
   * MB_ERR_STORE_FULL 507, MB_ERR_STORE_CORRUPT 500).
   */
  async outcome(node: MeshNode): Promise<PubAckBody | undefined> {
    await node.durability?.answersOwed?.(this);
    const a = this.answer;
    if (a === undefined) return undefined;
    const f = new Frame(a, 0, a.length);
    if (f.type === FrameType.ACK) return decodePubAck(f.payload);
    const e = decodeError(f.payload);
    throw new HttpError(codeFromNumber(e.code), e.message);
  }
}
