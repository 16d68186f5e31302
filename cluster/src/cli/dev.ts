import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BIN = fileURLToPath(new URL('../../../bin/meshbus.js', import.meta.url));

/**
 * `meshbus dev`: a local mesh of N real node processes on one machine, for
 * seeing and debugging the whole system. Node i listens for clients on
 * basePort+i, for peers on basePort+1000+i, for HTTP on httpBase+i, for
 * WebSocket on wsBase+i; every
 * node is seeded with the first. Ctrl-C stops them all.
 */
export async function runDev(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: 'string', default: '3' },
      'base-port': { type: 'string', default: '4480' },
      'http-base': { type: 'string', default: '8480' },
      'ws-base': { type: 'string', default: '9480' },
      'log-level': { type: 'string', default: 'warn' },
      mesh: { type: 'string', default: 'full' },
    },
  });
  const n = Number(values.nodes);
  const base = Number(values['base-port']);
  const httpBase = Number(values['http-base']);
  const wsBase = Number(values['ws-base']);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw Object.assign(new TypeError('--nodes must be 1..32'), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  const children: ChildProcess[] = [];
  const seed = `127.0.0.1:${base + 1000}`;
  for (let i = 0; i < n; i++) {
    const args = [
      BIN, 'start',
      '--name', `dev-${i}`,
      '--port', String(base + i),
      '--cluster-port', String(base + 1000 + i),
      '--http-port', String(httpBase + i),
      '--ws-port', String(wsBase + i),
      '--log-level', values['log-level'],
      '--mesh', values.mesh,
      ...(i > 0 ? ['--seeds', seed] : []),
    ];
    children.push(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }));
  }
  process.stdout.write(
    `meshbus dev: ${n} nodes\n` +
      children.map((_, i) => `  dev-${i}: clients 127.0.0.1:${base + i}  peers 127.0.0.1:${base + 1000 + i}  ws://127.0.0.1:${wsBase + i}  http://127.0.0.1:${httpBase + i}/`).join('\n') +
      `\nTry: npx meshbus sub 'demo.>' --server 127.0.0.1:${base + n - 1}   and   npx meshbus pub demo.hello hi --server 127.0.0.1:${base}\n`,
  );
  const exits = children.map((c) => new Promise<number>((r) => c.once('exit', (code) => r(code ?? 0))));
  const stop = (): void => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const codes = await Promise.all(exits);
  return codes.some((c) => c !== 0) ? 1 : 0;
}
