import { ClientError, isMeshbusError, utf8Decode, utf8Encode } from '@meshbus/proto';
import { connect, type Client } from '@meshbus/sdk';
import { UsageError, checkTopic, intOption, noExtraArgs, positional, stringOption, type CommandSpec, type OptionSpec, type ParsedArgs } from './command-spec.js';

/** Options every client command takes. */
export const CONNECT_OPTIONS: OptionSpec[] = [
  { name: 'server', short: 's', arg: 'host:port', default: '127.0.0.1:4480', help: 'Node to connect to; a comma-separated list is tried in order.' },
  { name: 'token', arg: 'token', help: 'Client token (or JWT) the node requires, if any.' },
];

export const PUB: CommandSpec = {
  name: 'pub',
  args: '<topic> <data>',
  summary: 'publish an event',
  description: 'Publishes <data> (UTF-8 text) on <topic>, a topic without wildcards, then exits once the node has received it.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'count', arg: 'n', default: '1', help: 'Publish the event this many times (1 or more).' },
    { name: 'header', arg: 'key=value', multiple: true, help: 'Add a header to the event; the value may be empty (key=).' },
  ],
};

export const SUB: CommandSpec = {
  name: 'sub',
  args: '<pattern>',
  summary: 'print the events of a topic pattern',
  description:
    'Subscribes to <pattern> (`*` matches one token, `>` one or more trailing tokens) and prints each event\'s payload on its own line (base64 if not UTF-8). Runs until --count events arrived, or Ctrl-C / SIGTERM.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'queue', arg: 'group', help: 'Join this queue group: each event goes to one member of the group.' },
    { name: 'count', arg: 'n', help: 'Exit 0 after this many events (1 or more); default: run until stopped.' },
  ],
};

export const REQ: CommandSpec = {
  name: 'req',
  args: '<topic> <data>',
  summary: 'send a request and print the reply',
  description: 'Sends <data> as a request on <topic> and prints the first reply. Exits 1 on timeout or when nobody serves the topic.',
  options: [...CONNECT_OPTIONS, { name: 'timeout', arg: 'ms', default: '5000', help: 'Give up waiting for a reply after this many milliseconds (1 or more).' }],
};

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
