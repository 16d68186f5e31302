/**
 * What an idle node still holds of events it has delivered. The ingress
 * stamp kept a DataView of the last input chunk it stamped (frames of one
 * chunk share it) until a frame of another chunk came: after a 16 MiB event
 * a node that went idle held those 16 MiB for good, after every connection
 * closed and two full GCs (review of the twenty-first session: heap snapshot
 * MeshNode.stamper → EventStamp.dvOf). Now it lets go at the end of the
 * event-loop turn. A node in a child process run with --expose-gc.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, RawWs, sleep, memoryNode, type MemoryNode } from '@meshbus/testkit';

let node: MemoryNode | undefined;
afterEach(() => node?.kill());

describe('an idle node holds no input it has routed', () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: 16 MiB events delivered, then idle: the node's array buffers are back near where they were`, async () => {
      node = await memoryNode({ maxPayload: 32 * 1024 * 1024 });
      const n = node;
      // The subscriber counts bytes (the test kit's decoder takes frames up to the default payload limit only).
      const sub = await RawClient.connect(n.port);
      sub.sub('big', 1);
      await sub.flush();
      let bytes = 0;
      sub.socket.on('data', (c: Buffer) => (bytes += c.length));
      const pub = kind === 'TCP' ? await RawClient.connect(n.port) : await RawWs.connect(`ws://127.0.0.1:${n.wsPort}/`);
      const before = (await n.memory()).arrayBuffers;
      for (let i = 0; i < 2; i++) pub.pub('big', Buffer.alloc(16 * 1024 * 1024, i + 1));
      await pub.flush(60_000);
      for (let k = 0; k < 600 && bytes < 32 * 1024 * 1024; k++) await sleep(50);
      expect(bytes).toBeGreaterThanOrEqual(32 * 1024 * 1024);
      pub.close();
      sub.close();
      await sleep(500);
      const after = (await n.memory()).arrayBuffers;
      // Before: +16 MiB (the last event's input chunk).
      expect(after - before).toBeLessThan(4 * 1024 * 1024);
    }, 60_000);
  }
});
