import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ClientError, decodeBody, utf8Encode } from '@meshbus/proto';
import { connect, type Client } from '@meshbus/sdk';
import type { TraceHop } from '@meshbus/core';

/**
 * Publishes one traced event and collects the hop records the nodes on its
 * path publish on `_TRACE.<id>`, for `waitMs`. Hops come back ordered by hop
 * count, then by arrival time.
 */
export async function traceEvent(client: Client, topic: string, payload: Uint8Array, waitMs: number): Promise<{ id: string; hops: TraceHop[] }> {
  const id = randomBytes(8).toString('hex');
  const hops: TraceHop[] = [];
  const sub = client.subscribe(`_TRACE.${id}`, { callback: (m) => void hops.push(decodeBody(m.data) as unknown as TraceHop) });
  await client.flush();
  client.publish(topic, payload, { trace: id });
  await client.flush();
  await new Promise((r) => setTimeout(r, waitMs));
  client.unsubscribe(sub);
  hops.sort((a, b) => a.hops - b.hops || a.in - b.in);
  return { id, hops };
}

/** Formats hops as a table: one line per node with arrival offset and time spent. */
export function formatTrace(topic: string, id: string, hops: TraceHop[]): string {
  if (hops.length === 0) return `trace ${id}: no node reported the event on ${topic} (is the server reachable and the topic valid?)\n`;
  const t0 = hops[0]!.in;
  const lines = hops.map((h) => {
    const name = h.name ? `${h.node} (${h.name})` : h.node;
    const at = (h.in - t0).toFixed(3).padStart(8);
    const spent = (h.out - h.in).toFixed(3);
    const to = h.to.length ? h.to.join(', ') : 'nobody';
    return `  hop ${h.hops}  ${name}\n         from ${h.from}  at +${at} ms  routed in ${spent} ms  -> ${to}`;
  });
  return `trace ${id}: ${topic}, ${hops.length} node(s)\n${lines.join('\n')}\n`;
}

export async function traceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      server: { type: 'string', short: 's', default: '127.0.0.1:4480' },
      token: { type: 'string' },
      wait: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
    },
  });
  const [topic, data] = positionals;
  if (topic === undefined || data === undefined) {
    throw Object.assign(new TypeError('usage: meshbus trace <topic> <data> [--server host:port] [--wait ms] [--json]'), { code: 'ERR_PARSE_ARGS_MISSING' });
  }
  let client: Client;
  try {
    client = await connect(values.server.split(','), { name: 'meshbus-trace', token: values.token, reconnect: false, connectTimeout: 3000 });
  } catch (e) {
    throw new ClientError('MB_ERR_CONNECT_FAILED', `cannot reach a meshbus node at ${values.server}`, { cause: e });
  }
  try {
    const { id, hops } = await traceEvent(client, topic, utf8Encode(data), Number(values.wait));
    process.stdout.write(values.json ? JSON.stringify({ id, topic, hops }, null, 2) + '\n' : formatTrace(topic, id, hops));
    return hops.length > 0 ? 0 : 1;
  } finally {
    await client.close();
  }
}
