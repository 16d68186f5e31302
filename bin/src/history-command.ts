import { ClientError, type Position } from '@meshbus/proto';
import type { Client, Msg, Subscription } from '@meshbus/sdk';
import { checkTopic, durationOption, intOption, noExtraArgs, positional, type ParsedArgs } from './command-spec.js';
import { HISTORY } from './command-specs.js';
import { openClient } from './client-connect.js';
import { payloadText } from './msg-format.js';
import { forTerminal } from './msg-format.js';

/** What `meshbus history` found: the topic's position and its newest events (oldest first). */
export interface TopicHistory {
  topic: string;
  epoch: string;
  /** Offset of the newest event (0: nothing stored yet in this epoch). */
  lastOffset: number;
  /** False when fewer than the events asked for are still stored (history trimmed or expired). */
  complete: boolean;
  events: { offset: number; timestamp: number; data: string; encoding?: 'base64'; headers?: Record<string, string> }[];
}

/** Polls until `done()` holds, the subscription ends (its error is thrown) or `deadline` (ms since the epoch) passes. */
async function until(sub: Subscription, done: () => boolean, deadline: number, what: string): Promise<void> {
  while (!done()) {
    if (sub.isClosed) throw sub.error ?? new ClientError('MB_ERR_CONNECTION_CLOSED', `the subscription ended while waiting for ${what}`);
    if (Date.now() > deadline) throw new ClientError('MB_ERR_TIMEOUT', `no ${what} from the node in time`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resumes `topic` after `since` and collects what the node sends until `last` arrived (or it says nothing can be recovered). */
async function replay(c: Client, topic: string, since: Position, last: number, deadline: number): Promise<{ recovered: boolean; msgs: Msg[] }> {
  const msgs: Msg[] = [];
  const sub = c.subscribe(topic, { since, callback: (m) => void msgs.push(m) });
  try {
    await until(sub, () => sub.recovered !== undefined, deadline, 'answer to the resume');
    if (!sub.recovered) return { recovered: false, msgs: [] };
    await until(sub, () => (msgs.at(-1)?.position?.offset ?? since.offset) >= last, deadline, 'history');
    return { recovered: true, msgs: msgs.filter((m) => (m.position?.offset ?? 0) <= last) };
  } finally {
    sub.unsubscribe();
  }
}

/**
 * Reads the newest `n` events of a durable topic through the SDK's resume
 * (SUB `since`): first "from now" for the epoch and last offset, then from
 * `last - n`; when the node no longer has that far back, from half as far
 * (at most 15 tries). Rejects with the node's error when the topic has no
 * history there (MB_ERR_NOT_DURABLE) or with MB_ERR_TIMEOUT after `waitMs`.
 */
export async function readHistory(c: Client, topic: string, n: number, waitMs: number): Promise<TopicHistory> {
  const deadline = Date.now() + waitMs;
  const probe = c.subscribe(topic, { since: { epoch: '', offset: 0 }, callback: () => {} });
  let now: Position;
  try {
    await until(probe, () => probe.recovered !== undefined, deadline, 'position');
    now = { ...probe.position! };
  } finally {
    probe.unsubscribe();
  }
  const out: TopicHistory = { topic, epoch: now.epoch, lastOffset: now.offset, complete: true, events: [] };
  for (let want = Math.min(n, now.offset); want > 0; want = Math.floor(want / 2)) {
    const r = await replay(c, topic, { epoch: now.epoch, offset: now.offset - want }, now.offset, deadline);
    if (!r.recovered) {
      out.complete = false;
      continue;
    }
    out.events = r.msgs.map((m) => {
      const { text, base64 } = payloadText(m.data);
      return { offset: m.position?.offset ?? 0, timestamp: m.timestamp, data: text, ...(base64 ? { encoding: 'base64' as const } : {}), ...(m.headers ? { headers: m.headers } : {}) };
    });
    break;
  }
  if (n > now.offset) out.complete = out.complete && out.events.length === now.offset;
  return out;
}

/** The history as printed: a header line, then `offset  ISO time  payload` per event. */
export function formatHistory(h: TopicHistory, asked: number): string {
  const lines = [`${h.topic}: epoch ${h.epoch}, last offset ${h.lastOffset}`];
  if (asked > 0 && h.lastOffset > 0) {
    if (h.events.length === 0) lines.push('  (none of the asked-for events is still stored: trimmed or expired)');
    else if (!h.complete || h.events.length < Math.min(asked, h.lastOffset)) lines.push(`  (older events are no longer stored; showing the last ${h.events.length})`);
  }
  const w = String(h.lastOffset).length;
  for (const e of h.events) lines.push(`${String(e.offset).padStart(w)}  ${new Date(e.timestamp).toISOString()}  ${e.encoding ? `base64:${e.data}` : e.data}`);
  return lines.join('\n') + '\n';
}

export async function runHistory(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 1, HISTORY);
  const topic = checkTopic(positional(p, 0, '<topic>', HISTORY), false);
  const last = intOption(p, 'last', 0, 10_000)!;
  const wait = durationOption(p, 'wait', 'ms', 1)!;
  const c = await openClient(p, 'meshbus-history');
  try {
    const h = await readHistory(c, topic, last, wait);
    process.stdout.write(p.values.json === true ? JSON.stringify(h) + '\n' : forTerminal(formatHistory(h, last)));
    return 0;
  } finally {
    await c.close();
  }
}
