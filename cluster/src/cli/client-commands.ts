import { parseArgs } from 'node:util';
import { ClientError, isMeshbusError, utf8Decode, utf8Encode } from '@meshbus/proto';
import { connect, type Client } from '@meshbus/sdk';

const common = {
  server: { type: 'string', short: 's', default: '127.0.0.1:4480' },
  token: { type: 'string' },
} as const;

async function open(server: string, token: string | undefined): Promise<Client> {
  try {
    return await connect(server.split(','), { name: 'meshbus-cli', token, reconnect: false, connectTimeout: 3000 });
  } catch (e) {
    // The node answered and refused (auth, version): say that, not "unreachable".
    if (isMeshbusError(e) && e.code !== 'MB_ERR_CONNECT_FAILED') throw e;
    const why = (e as Error).message.split(': ').pop();
    throw new ClientError('MB_ERR_CONNECT_FAILED', `cannot reach a meshbus node at ${server} (${why})`, { cause: e });
  }
}

function need(v: string | undefined, what: string): string {
  if (v === undefined) throw Object.assign(new TypeError(`missing ${what}`), { code: 'ERR_PARSE_ARGS_MISSING' });
  return v;
}

function text(b: Uint8Array): string {
  return utf8Decode(b) ?? Buffer.from(b).toString('base64');
}

export async function runPub(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, count: { type: 'string', default: '1' }, header: { type: 'string', multiple: true } },
  });
  const topic = need(positionals[0], '<topic>');
  const data = utf8Encode(need(positionals[1], '<data>'));
  const headers = Object.fromEntries((values.header ?? []).map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]));
  const c = await open(values.server, values.token);
  const count = Number(values.count);
  for (let i = 0; i < count; i++) c.publish(topic, data, Object.keys(headers).length ? { headers } : undefined);
  await c.flush();
  await c.close();
  return 0;
}

export async function runSub(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, queue: { type: 'string' }, count: { type: 'string' } },
  });
  const topic = need(positionals[0], '<topic>');
  const c = await open(values.server, values.token);
  const max = values.count !== undefined ? Number(values.count) : Infinity;
  const sub = c.subscribe(topic, values.queue ? { queue: values.queue } : {});
  await c.flush();
  process.stderr.write(`subscribed to ${topic} on ${values.server}\n`);
  const stop = (): void => {
    c.close().catch((e: unknown) => process.stderr.write(`meshbus: close failed: ${String(e)}\n`));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let n = 0;
  for await (const m of sub) {
    process.stdout.write(text(m.data) + '\n');
    if (++n >= max) break;
  }
  await c.close();
  return 0;
}

export async function runReq(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...common, timeout: { type: 'string', default: '5000' } } });
  const topic = need(positionals[0], '<topic>');
  const data = utf8Encode(need(positionals[1], '<data>'));
  const c = await open(values.server, values.token);
  try {
    const reply = await c.request(topic, data, { timeout: Number(values.timeout) });
    process.stdout.write(text(reply.data) + '\n');
    return 0;
  } finally {
    await c.close();
  }
}

export async function runTrace(args: string[]): Promise<number> {
  const { traceCommand } = await import('./trace-command.js');
  return traceCommand(args);
}
