import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Where @meshbus/core resolves from (its package folder). */
const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface MemoryNode {
  child: ChildProcessWithoutNullStreams;
  /** The node's client port and its WebSocket gateway's port. */
  port: number;
  wsPort: number;
  /** process.memoryUsage() of the node after two full GCs (bytes). */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** How many client connections the node holds. */
  connections(): Promise<number>;
  kill(): void;
}

/**
 * A node (`startNode` with `opts`, silent, and a WebSocket gateway) in a
 * child process run with --expose-gc, for tests of what the node keeps in
 * memory: `memory()` answers after a full collection, so what it reports is
 * what is still referenced, not garbage waiting for V8. JSON options only.
 */
export async function memoryNode(opts: Record<string, unknown> = {}): Promise<MemoryNode> {
  const code = `
    import { startNode, silentLogger } from '@meshbus/core';
    import { WsGateway } from '@meshbus/core/ws';
    import { createInterface } from 'node:readline';
    const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    console.log(JSON.stringify({ port: n.port, wsPort: g.port }));
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l === 'connections') return console.log(JSON.stringify([...n.connections()].length));
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
  const { port, wsPort } = (await next()) as { port: number; wsPort: number };
  return {
    child,
    port,
    wsPort,
    memory: async () => (await ask('memory')) as NodeJS.MemoryUsage,
    connections: async () => (await ask('connections')) as number,
    kill: () => void child.kill(),
  };
}
