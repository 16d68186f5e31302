import { utf8Decode } from '@meshbus/proto';
import type { Msg } from '@meshbus/sdk';

/** How `sub`, `reply` and `req` print an event. */
export type MsgFormat = 'text' | 'raw' | 'json';

/** C0 controls but tab and newline, DEL, C1 controls (CSI U+009B among them) and the bidi overrides and isolates. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `s` made safe to print on a terminal: what the network sent (a payload, a
 * topic, a header, a node's error message) cannot move the cursor, rewrite
 * the screen or the window title, or set the clipboard (ESC sequences, OSC
 * 52). Each unsafe character is written as a \u escape; tab and newline are kept.
 */
export function forTerminal(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Payload as text: UTF-8 when it is, else base64. */
export function payloadText(b: Uint8Array): { text: string; base64: boolean } {
  const s = utf8Decode(b);
  return s === undefined ? { text: Buffer.from(b).toString('base64'), base64: true } : { text: s, base64: false };
}

/** One event as a JSON object (one line): topic, data (base64 when not UTF-8, then `encoding`), headers, reply, position. */
export function msgJson(m: Msg, n?: number): Record<string, unknown> {
  const { text, base64 } = payloadText(m.data);
  const o: Record<string, unknown> = {};
  if (n !== undefined) o.n = n;
  o.topic = m.topic;
  o.data = text;
  if (base64) o.encoding = 'base64';
  o.size = m.data.length;
  if (m.headers) o.headers = m.headers;
  if (m.reply) o.reply = m.reply;
  if (m.position) o.position = m.position;
  if (m.timestamp) o.timestamp = m.timestamp;
  return o;
}

/**
 * One event as printed, newline included:
 * - text: `[#n] topic: payload`, with `--headers` `[#n] topic {"k":"v"}: payload`, made safe for a terminal (forTerminal);
 * - raw: the payload only (base64 if not UTF-8);
 * - json: one JSON object (msgJson).
 */
export function formatMsg(m: Msg, n: number, format: MsgFormat, showHeaders: boolean): string {
  if (format === 'json') return JSON.stringify(msgJson(m, n)) + '\n';
  const { text } = payloadText(m.data);
  // Raw: the payload as sent, for a pipe (json escapes it); text is for a terminal.
  if (format === 'raw') return text + '\n';
  const h = showHeaders ? ` ${JSON.stringify(m.headers ?? {})}` : '';
  return forTerminal(`[#${n}] ${m.topic}${h}: ${text}`) + '\n';
}
