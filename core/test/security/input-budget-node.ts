import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FrameType, encodeFrame } from '@meshbus/proto';

/** Where @meshbus/core resolves from (its package folder). */
const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface BudgetNode {
  child: ChildProcessWithoutNullStreams;
  port: number;
  wsPort: number;
  httpPort: number;
  /** process.memoryUsage() of the node after two full GCs (bytes). */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** The node's input budget counters (undefined on a node without one). */
  budget(): Promise<{ limit: number; used: number; peak: number; waits: number; evictions: number; holding: number; waiting: number } | undefined>;
  kill(): void;
}

/**
 * A node with its WebSocket gateway and HTTP API, in a child process run with
 * --expose-gc (what it holds after a full collection is what it references).
 * JSON options only (`gateway`: the WsGateway's); a node that does not know an option ignores it.
 */
export async function budgetNode(opts: Record<string, unknown>, gateway: Record<string, unknown> = {}): Promise<BudgetNode> {
  const code = `
    import { startNode, silentLogger } from '@meshbus/core';
    import { WsGateway } from '@meshbus/core/ws';
    import { startHttp } from '@meshbus/core/http';
    import { createInterface } from 'node:readline';
    const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1', ...${JSON.stringify(gateway)} }).listen();
    const h = await startHttp(n, { port: 0, host: '127.0.0.1' });
    console.log(JSON.stringify({ port: n.port, wsPort: g.port, httpPort: h.port }));
    createInterface({ input: process.stdin }).on('line', (l) => {
      const b = n.inputBudget;
      if (l === 'budget') return console.log(JSON.stringify(b ? { limit: b.limit, used: b.used, peak: b.peak, waits: b.waits, evictions: b.evictions, holding: b.holding, waiting: b.waitingCount } : null));
      globalThis.gc(); globalThis.gc();
      console.log(JSON.stringify(process.memoryUsage()));
    });
    process.stdin.on('end', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: CORE_DIR, stdio: 'pipe' });
  child.stderr.resume();
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<unknown> => {
    const r = await lines.next();
    if (r.done) throw new Error('node process exited');
    return JSON.parse(r.value) as unknown;
  };
  const ask = (q: string): Promise<unknown> => {
    child.stdin.write(`${q}\n`);
    return next();
  };
  const { port, wsPort, httpPort } = (await next()) as { port: number; wsPort: number; httpPort: number };
  return {
    child,
    port,
    wsPort,
    httpPort,
    memory: async () => (await ask('memory')) as NodeJS.MemoryUsage,
    budget: async () => ((await ask('budget')) ?? undefined) as Awaited<ReturnType<BudgetNode['budget']>>,
    kill: () => void child.kill(),
  };
}

/** The first `sent` bytes of a PUB on `topic` whose payload is `payload` bytes: a frame that is never finished. */
export function unfinishedPub(topic: string, payload: number, sent: number): Buffer {
  return Buffer.from(encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.alloc(payload, 7) }).subarray(0, sent));
}

/** Sum of what `sockets` still have to write (their own buffers): 0 once the node read, or the kernel took, all of it. */
export function unsent(sockets: net.Socket[]): number {
  return sockets.reduce((n, s) => n + s.writableLength, 0);
}
