import { ClientError, isMeshbusError, utf8Decode, utf8Encode } from '@meshbus/proto';
import { connect, type Client } from '@meshbus/sdk';
import { UsageError, checkTopic, intOption, noExtraArgs, positional, stringOption, type ParsedArgs } from './command-spec.js';
import { PUB, REQ, SUB } from './command-specs.js';

/** Connects with no reconnection: a CLI run talks to the node once. */
export async function openClient(p: ParsedArgs, name = 'meshbus-cli'): Promise<Client> {
  const server = stringOption(p, 'server')!;
  const servers = server.split(',').map((s) => s.trim());
  if (servers.some((s) => s.length === 0)) throw new UsageError(`--server "${server}": empty address in the list`);
  try {
    return await connect(servers, { name, token: stringOption(p, 'token'), reconnect: false, connectTimeout: 3000 });
  } catch (e) {
    // The node answered and refused (auth, version): say that, not "unreachable".
    if (isMeshbusError(e) && e.code !== 'MB_ERR_CONNECT_FAILED') throw e;
    const why = (e as Error).message.split(': ').pop();
    throw new ClientError('MB_ERR_CONNECT_FAILED', `cannot reach a meshbus node at ${server} (${why})`, { cause: e });
  }
}

function text(b: Uint8Array): string {
  return utf8Decode(b) ?? Buffer.from(b).toString('base64');
}

/** `--header k=v` values as a header record; UsageError for one without `=` or with an empty key. */
function headers(p: ParsedArgs): Record<string, string> | undefined {
  const raw = (p.values.header as string[] | undefined) ?? [];
  if (raw.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const h of raw) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header "${h}": must be key=value (the key not empty)`);
    out[h.slice(0, eq)] = h.slice(eq + 1);
  }
  return out;
}

export async function runPub(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, PUB);
  const topic = checkTopic(positional(p, 0, '<topic>', PUB), false);
  const data = utf8Encode(positional(p, 1, '<data>', PUB));
  const count = intOption(p, 'count', 1)!;
  const h = headers(p);
  const c = await openClient(p);
  try {
    for (let i = 0; i < count; i++) c.publish(topic, data, h ? { headers: h } : undefined);
    await c.flush();
  } finally {
    await c.close();
  }
  return 0;
}

export async function runSub(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 1, SUB);
  const topic = checkTopic(positional(p, 0, '<pattern>', SUB), true, '<pattern>');
  const max = intOption(p, 'count', 1) ?? Infinity;
  const queue = stringOption(p, 'queue');
  if (queue === '') throw new UsageError('--queue: empty group name');
  const c = await openClient(p);
  const stop = (): void => {
    c.close().catch((e: unknown) => process.stderr.write(`meshbus: close failed: ${String(e)}\n`));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const sub = c.subscribe(topic, queue ? { queue } : {});
    await c.flush();
    process.stderr.write(`subscribed to ${topic} on ${stringOption(p, 'server')}\n`);
    let n = 0;
    for await (const m of sub) {
      process.stdout.write(text(m.data) + '\n');
      if (++n >= max) break;
    }
  } finally {
    await c.close();
  }
  return 0;
}

export async function runReq(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, REQ);
  const topic = checkTopic(positional(p, 0, '<topic>', REQ), false);
  const data = utf8Encode(positional(p, 1, '<data>', REQ));
  const timeout = intOption(p, 'timeout', 1)!;
  const c = await openClient(p);
  try {
    const reply = await c.request(topic, data, { timeout });
    process.stdout.write(text(reply.data) + '\n');
    return 0;
  } finally {
    await c.close();
  }
}
