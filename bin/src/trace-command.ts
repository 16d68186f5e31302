import { randomBytes } from 'node:crypto';
import { utf8Encode } from '@meshbus/proto';
import type { Client } from '@meshbus/sdk';
import { hopName, readHopRecord, type TraceHop } from '@meshbus/core/trace-hop';
import { checkTopic, durationOption, noExtraArgs, positional, type ParsedArgs } from './command-spec.js';
import { TRACE } from './command-specs.js';
import { openClient } from './client-connect.js';
import { forTerminal } from './msg-format.js';

/**
 * Publishes one traced event and collects the hop records the nodes on its
 * path publish on `_TRACE.<id>`, for `waitMs`. Hops come back ordered by hop
 * count, then by arrival time.
 */
export async function traceEvent(client: Client, topic: string, payload: Uint8Array, waitMs: number): Promise<{ id: string; hops: TraceHop[] }> {
  const id = randomBytes(8).toString('hex');
  const hops: TraceHop[] = [];
  const sub = client.subscribe(`_TRACE.${id}`, {
    callback: (m) => {
      const hop = readHopRecord(m.data);
      if (hop !== undefined) hops.push(hop);
    },
  });
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
    const name = hopName(h);
    const at = (h.in - t0).toFixed(3).padStart(8);
    const spent = (h.out - h.in).toFixed(3);
    const to = h.to.length ? h.to.join(', ') : 'nobody';
    return `  hop ${h.hops}  ${name}\n         from ${h.from}  at +${at} ms  routed in ${spent} ms  -> ${to}`;
  });
  return `trace ${id}: ${topic}, ${hops.length} node(s)\n${lines.join('\n')}\n`;
}

export async function traceCommand(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 2, TRACE);
  const topic = checkTopic(positional(p, 0, '<topic>', TRACE), false);
  const data = utf8Encode(positional(p, 1, '<data>', TRACE));
  const wait = durationOption(p, 'wait', 'ms', 1)!;
  const client = await openClient(p, 'meshbus-trace');
  try {
    const { id, hops } = await traceEvent(client, topic, data, wait);
    process.stdout.write(p.values.json === true ? JSON.stringify({ id, topic, hops }, null, 2) + '\n' : forTerminal(formatTrace(topic, id, hops)));
    return hops.length > 0 ? 0 : 1;
  } finally {
    await client.close();
  }
}
