import { ClientError, isMeshbusError, utf8Encode, type MeshbusError, thrownText } from '@meshbus/proto';
import type { Client, ConnectOptions, Msg } from '@meshbus/sdk';
import { UsageError, checkTopic, durationOption, intOption, noExtraArgs, positional, stringOption, type ParsedArgs } from './command-spec.js';
import { PUB, REPLY, REQ, SUB } from './command-specs.js';
import { clientTarget, openClient } from './client-connect.js';
import { forTerminal, formatMsg, msgJson, payloadText, type MsgFormat } from './msg-format.js';

export { openClient } from './client-connect.js';

/** `--header k=v` values as a header record; UsageError for one without `=` or with an empty key. */
export function headerOption(p: ParsedArgs): Record<string, string> | undefined {
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

/** --json / --raw / neither; UsageError when both are given. */
function printFormat(p: ParsedArgs): MsgFormat {
  if (p.values.json === true && p.values.raw === true) throw new UsageError('--json and --raw: give one of them');
  return p.values.json === true ? 'json' : p.values.raw === true ? 'raw' : 'text';
}

function queueOption(p: ParsedArgs): string | undefined {
  const queue = stringOption(p, 'queue');
  if (queue === '') throw new UsageError('--queue: empty group name');
  if (queue !== undefined) checkTopic(queue, false, '--queue');
  return queue;
}

export async function runPub(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, PUB);
  const topic = checkTopic(positional(p, 0, '<topic>', PUB), false);
  const data = utf8Encode(positional(p, 1, '<data>', PUB));
  const count = intOption(p, 'count', 1)!;
  const h = headerOption(p);
  const delay = durationOption(p, 'delay', 'ms', 0, 30 * 24 * 3600 * 1000);
  const acked = p.values.ack === true || delay !== undefined;
  const json = p.values.json === true;
  const c = await openClient(p);
  try {
    if (!acked) {
      // A plain publish has no answer of its own: the node's refusals (permission denied, rate limited, too large)
      // come as ERROR frames, which the SDK reports as status errors. They are sent before the flush's PONG, so
      // once the flush is back the node's verdict on every event is known.
      const refused = collectErrors(c);
      for (let i = 0; i < count; i++) c.publish(topic, data, h ? { headers: h } : undefined);
      await c.flush();
      const errors = refused.stop();
      if (errors.length > 0) throw errors.length === 1 ? errors[0] : refusedAll(errors);
      if (json) process.stdout.write(JSON.stringify({ topic, published: count, bytes: data.length }) + '\n');
      return 0;
    }
    // One at a time: the position printed is the one of that event, and a refusal stops the run.
    for (let n = 1; n <= count; n++) {
      const pos = await c.publish(topic, data, { ack: true, ...(h ? { headers: h } : {}), ...(delay !== undefined ? { delay } : {}) });
      if (json) process.stdout.write(JSON.stringify({ n, topic, ...(pos ?? {}) }) + '\n');
      else process.stdout.write(`[#${n}] ${topic}: ${pos ? `stored at ${pos.epoch}:${pos.offset}` : delay !== undefined ? `scheduled in ${delay} ms` : 'acknowledged'}\n`);
    }
    return 0;
  } finally {
    await c.close();
  }
}

/** Collects the errors `c` reports (status 'error') until stop(), which returns them, each code and message once. */
function collectErrors(c: Client, sid?: number): { stop: () => MeshbusError[] } {
  const seen = new Map<string, MeshbusError>();
  const off = c.on('status', (s) => {
    if (s.type === 'error' && (sid === undefined || s.sid === sid)) seen.set(`${s.error.code} ${s.error.message}`, s.error);
  });
  return {
    stop: () => {
      off();
      return [...seen.values()];
    },
  };
}

/** One error naming several refusals (e.g. some events denied, later ones rate limited): the first's code, every message. */
function refusedAll(errors: MeshbusError[]): MeshbusError {
  return new ClientError(errors[0]!.code, errors.map((e) => `${e.message} (${e.code})`).join('; '));
}

/**
 * Subscribes and waits for the node's verdict: the flush round trip comes back after the node's answer to the SUB,
 * so a refusal (permission denied, too many subscriptions) is known before the command says it is subscribed.
 */
async function subscribeAccepted(c: Client, topic: string, queue: string | undefined): Promise<ReturnType<Client['subscribe']>> {
  const sub = c.subscribe(topic, queue ? { queue } : {});
  const refused = collectErrors(c, sub.sid);
  await c.flush();
  const errors = refused.stop();
  if (errors.length > 0) throw errors[0];
  return sub;
}

/**
 * A long-running client (sub, reply): reconnects up to `reconnects` times
 * (to the next server of the list or one the mesh announced; at once after
 * a drain), saying so on stderr. `failure(e)` turns the client's terminal
 * error into one that also names why the last connection was lost.
 */
async function openFollowing(p: ParsedArgs, name: string): Promise<{ c: Client; failure: (e: unknown) => unknown }> {
  const reconnects = intOption(p, 'reconnects', 0, 1000)!;
  const options: ConnectOptions = reconnects === 0 ? {} : { reconnect: true, maxReconnectAttempts: reconnects, reconnectBackoff: { base: 100, max: 2000 } };
  const c = await openClient(p, name, options);
  let lost: MeshbusError | undefined;
  c.on('status', (s) => {
    if (s.type === 'disconnected') {
      lost = s.error;
      if (reconnects > 0) {
        const why = s.error?.code === 'MB_ERR_DRAINING' ? 'is draining' : `was lost${s.error ? ` (${s.error.message})` : ''}`;
        process.stderr.write(forTerminal(`${s.server} ${why}; reconnecting`) + '\n');
      }
    } else if (s.type === 'connected' && s.reconnected) {
      process.stderr.write(`reconnected to ${s.server}, subscribed again\n`);
    }
  });
  const failure = (e: unknown): unknown => {
    if (!isMeshbusError(e) || lost === undefined || e === lost || reconnects === 0) return e;
    return new ClientError(e.code === 'MB_ERR_CONNECT_FAILED' ? 'MB_ERR_CONNECT_FAILED' : 'MB_ERR_CONNECTION_CLOSED', `lost the connection (${lost.message}, ${lost.code}), then ${e.message}`, { cause: e });
  };
  return { c, failure };
}

/**
 * Closes `c` on SIGINT/SIGTERM (the command then ends with 0): `signalled()`
 * says so, so the command can tell that close from a failure (a flush or an
 * iterator that ends with "client is closed" because of it).
 */
function closeOnSignal(c: Client): { unhook: () => void; signalled: () => boolean } {
  let signalled = false;
  const stop = (): void => {
    signalled = true;
    c.close().catch((e: unknown) => process.stderr.write(`meshbus: close failed: ${thrownText(e)}\n`));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    unhook: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
    signalled: () => signalled,
  };
}

export async function runSub(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 1, SUB);
  const topic = checkTopic(positional(p, 0, '<pattern>', SUB), true, '<pattern>');
  const max = intOption(p, 'count', 1) ?? Infinity;
  const queue = queueOption(p);
  const format = printFormat(p);
  const showHeaders = p.values.headers === true;
  const { c, failure } = await openFollowing(p, 'meshbus-sub');
  const { unhook, signalled } = closeOnSignal(c);
  try {
    const sub = await subscribeAccepted(c, topic, queue);
    process.stderr.write(`subscribed to ${topic} on ${c.server ?? clientTarget(p).label}\n`);
    let n = 0;
    for await (const m of sub) {
      process.stdout.write(formatMsg(m, ++n, format, showHeaders));
      if (n >= max) break;
    }
  } catch (e) {
    if (signalled()) return 0;
    throw failure(e);
  } finally {
    unhook();
    await c.close();
  }
  return 0;
}

export async function runReply(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, REPLY);
  const topic = checkTopic(positional(p, 0, '<topic>', REPLY), true);
  const echo = p.values.echo === true;
  const given = p.positionals[1];
  if (echo && given !== undefined) throw new UsageError('reply: give <data> or --echo, not both');
  if (!echo && given === undefined) throw new UsageError('reply: missing <data> (or --echo to answer with the request itself)');
  const h = headerOption(p);
  if (echo && h) throw new UsageError('--header: --echo answers with the request\'s own headers');
  const data = given === undefined ? undefined : utf8Encode(given);
  const max = intOption(p, 'count', 1) ?? Infinity;
  const queue = queueOption(p);
  const format = printFormat(p);
  const showHeaders = p.values.headers === true;
  const { c, failure } = await openFollowing(p, 'meshbus-reply');
  const { unhook, signalled } = closeOnSignal(c);
  try {
    const sub = await subscribeAccepted(c, topic, queue);
    process.stderr.write(`serving requests on ${topic} on ${c.server ?? clientTarget(p).label}\n`);
    let n = 0;
    for await (const m of sub) {
      // An event that is not a request (no reply topic) is shown, not answered or counted.
      const answered = echo ? m.respond(m.data, m.headers ? { headers: m.headers } : undefined) : m.respond(data, h ? { headers: h } : undefined);
      process.stdout.write(formatMsg(m, answered ? ++n : n, format, showHeaders));
      if (n >= max) break;
    }
    // The answers leave before the process does; after a signal the client is closed and there is nothing to flush.
    if (!signalled()) await c.flush();
  } catch (e) {
    // A signal closed the client on purpose: whatever that interrupted (the iterator, the flush) is not a failure.
    if (signalled()) return 0;
    throw failure(e);
  } finally {
    unhook();
    await c.close();
  }
  return 0;
}

export async function runReq(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, REQ);
  const topic = checkTopic(positional(p, 0, '<topic>', REQ), false);
  const data = utf8Encode(positional(p, 1, '<data>', REQ));
  const timeout = durationOption(p, 'timeout', 'ms', 1)!;
  const h = headerOption(p);
  const c = await openClient(p);
  try {
    const reply: Msg = await c.request(topic, data, { timeout, ...(h ? { headers: h } : {}) });
    process.stdout.write(p.values.json === true ? JSON.stringify(msgJson(reply)) + '\n' : forTerminal(payloadText(reply.data).text) + '\n');
    return 0;
  } finally {
    await c.close();
  }
}
