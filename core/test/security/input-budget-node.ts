import net from 'node:net';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { memoryNode, type MemoryNode } from '@meshbus/testkit';

export type BudgetNode = MemoryNode;

/** A memory node (testkit) with its HTTP API; `gateway`: the WsGateway's options. */
export function budgetNode(opts: Record<string, unknown>, gateway: Record<string, unknown> = {}): Promise<BudgetNode> {
  return memoryNode(opts, { gateway, http: true });
}

/** The first `sent` bytes of a PUB on `topic` whose payload is `payload` bytes: a frame that is never finished. */
export function unfinishedPub(topic: string, payload: number, sent: number): Buffer {
  return Buffer.from(encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.alloc(payload, 7) }).subarray(0, sent));
}

/** Sum of what `sockets` still have to write (their own buffers): 0 once the node read, or the kernel took, all of it. */
export function unsent(sockets: net.Socket[]): number {
  return sockets.reduce((n, s) => n + s.writableLength, 0);
}
