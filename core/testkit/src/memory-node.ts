import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Where @meshbus/core resolves from (its package folder). */
const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface MemoryNode {
  child: ChildProcessWithoutNullStreams;
  /** The node's client port, its WebSocket gateway's port, and its HTTP API's (0 without `http`). */
  port: number;
  wsPort: number;
  httpPort: number;
  /** process.memoryUsage() of the node after two full GCs (bytes). */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** How many client connections the node holds. */
  connections(): Promise<number>;
  /** The node's input budget counters (SPEC 9.5; undefined on a node without one). */
  budget(): Promise<InputBudgetCounters | undefined>;
  kill(): void;
}

export interface InputBudgetCounters {
  limit: number;
  used: number;
  peak: number;
  waits: number;
  evictions: number;
  holding: number;
  waiting: number;
}

/**
 * A node (`startNode` with `opts`, silent, and a WebSocket gateway with
 * `o.gateway`'s options; its HTTP API too with `o.http`) in a child process
 * run with --expose-gc, for tests of what the node keeps in memory:
 * `memory()` answers after a full collection, so what it reports is what is
 * still referenced, not garbage waiting for V8. JSON options only.
 */
export async function memoryNode(opts: Record<string, unknown> = {}, o: { gateway?: Record<string, unknown>; http?: boolean } = {}): Promise<MemoryNode> {
  const code = `
    import { startNode, silentLogger } from '@meshbus/core';
    import { WsGateway } from '@meshbus/core/ws';
    import { createInterface } from 'node:readline';
    const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1', ...${JSON.stringify(o.gateway ?? {})} }).listen();
    const h = ${o.http === true} ? await (await import('@meshbus/core/http')).startHttp(n, { port: 0, host: '127.0.0.1' }) : undefined;
    console.log(JSON.stringify({ port: n.port, wsPort: g.port, httpPort: h?.port ?? 0 }));
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l === 'connections') return console.log(JSON.stringify([...n.connections()].length));
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
    connections: async () => (await ask('connections')) as number,
    budget: async () => ((await ask('budget')) ?? undefined) as InputBudgetCounters | undefined,
    kill: () => void child.kill(),
  };
}
