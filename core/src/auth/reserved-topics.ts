import { isTraceId, type Frame } from '@meshbus/proto';

/**
 * The two topic prefixes the node reserves (SPEC.md 11.1):
 *
 * - `_INBOX.<client id>.…` belongs to the connection whose WELCOME gave it
 *   that client id: only it may subscribe there; anyone may publish replies.
 * - `_TRACE.<trace id>` carries the hop records of one traced event. Trace
 *   ids are 16 random lowercase hex digits, so only whoever started the
 *   trace knows the topic; a client subscribes to its own trace id and
 *   nothing wider unless its token explicitly allows a `_TRACE` pattern.
 */
export const INBOX = '_INBOX';
export const TRACE = '_TRACE';
/** Dead letters of durable queue groups (`_DLQ.<group>`, SPEC 15): only nodes publish there. */
export const DLQ = '_DLQ';
const INBOX_DOT = '_INBOX.';
const TRACE_DOT = '_TRACE.';


/** The first token of a topic or pattern. */
function firstToken(p: string): string {
  const i = p.indexOf('.');
  return i < 0 ? p : p.slice(0, i);
}

/** True for `_TRACE` and `_TRACE.…`: topics only nodes publish on (hop records). */
export function isTraceTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x5f /* _ */ && firstToken(topic) === TRACE;
}

/** The bytes of `_TRACE`, `_DLQ` and `_INBOX`, for the checks on a frame's topic bytes. */
const TRACE_BYTES = [0x5f, 0x54, 0x52, 0x41, 0x43, 0x45];
const DLQ_BYTES = [0x5f, 0x44, 0x4c, 0x51];
const INBOX_BYTES = [0x5f, 0x49, 0x4e, 0x42, 0x4f, 0x58];

/**
 * True when the topic bytes `buf[start, start + len)` have `first` (bytes)
 * for first token. Read on the bytes of a frame: a reply topic
 * (`_INBOX.<client>.<n>.<token>`) is new at every request, and decoding it
 * into a string at each check cost ~40 % of a node's allocations on
 * request/reply (bench/README.md, "Request/reply tail").
 */
function firstTokenIs(buf: Uint8Array, start: number, len: number, first: readonly number[]): boolean {
  const n = first.length;
  if (len < n || (len > n && buf[start + n] !== 0x2e /* . */)) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== first[i]) return false;
  return true;
}

/** isTraceTopic on a frame's topic bytes, without decoding them. */
export function isTraceTopicAt(buf: Uint8Array, start: number, len: number): boolean {
  return buf[start] === 0x5f /* _ */ && firstTokenIs(buf, start, len, TRACE_BYTES);
}

/** True for a topic under `_INBOX.` (a reply topic, SPEC 10.4), on a frame's topic bytes; not `_INBOX` itself. */
export function isInboxTopicAt(buf: Uint8Array, start: number, len: number): boolean {
  return len > INBOX_BYTES.length && buf[start] === 0x5f /* _ */ && firstTokenIs(buf, start, len, INBOX_BYTES);
}

/** True for `_DLQ` and `_DLQ.…`: dead letters, whose header `mb-topic` names the topic each event was published on. */
export function isDeadLetterTopicAt(buf: Uint8Array, start: number, len: number): boolean {
  return buf[start] === 0x5f /* _ */ && firstTokenIs(buf, start, len, DLQ_BYTES);
}

/**
 * Whether a connection whose token's rules are `rules` (undefined: none) may
 * read dead letter `f`: it carries an event of another topic, which it names
 * (`mb-topic`, SPEC 15), and a token that may not receive that topic may not
 * read it here either (before, `subscribe: { deny: ['orders.secret'] }` read
 * `orders.secret` events on `_DLQ.<group>`). One that names none (or whose
 * extension block is malformed) is read only without rules.
 */
export function mayReadDeadLetter(f: Frame, rules: { canReceive(topic: string): boolean } | undefined): boolean {
  if (rules === undefined) return true;
  let topic: unknown;
  try {
    topic = f.ext?.headers?.['mb-topic'];
  } catch {
    return false;
  }
  return typeof topic === 'string' && topic !== '' && rules.canReceive(topic);
}

/**
 * True for topics only nodes publish on: hop records (`_TRACE…`) and dead
 * letters (`_DLQ…`). A client's PUB there, or a REQ naming one as its reply
 * topic, is refused (client-limits.ts), and so is the HTTP API's publish:
 * a forged dead letter carried any `mb-topic` and `mb-error` a consumer of
 * dead letters trusts.
 */
export function isNodeOnlyTopic(topic: string): boolean {
  if (topic.charCodeAt(0) !== 0x5f /* _ */) return false;
  const first = firstToken(topic);
  return first === TRACE || first === DLQ;
}

/** isNodeOnlyTopic on a frame's topic bytes, without decoding them. */
export function isNodeOnlyTopicAt(buf: Uint8Array, start: number, len: number): boolean {
  return buf[start] === 0x5f /* _ */ && (firstTokenIs(buf, start, len, TRACE_BYTES) || firstTokenIs(buf, start, len, DLQ_BYTES));
}

/**
 * True for topics under a reserved prefix (`_INBOX…`, `_TRACE…`, `_DLQ…`):
 * a durable queue whose pattern starts with a wildcard never takes them
 * (store-config.ts). `_DLQ` too: a `>` queue took its own dead letters as
 * jobs, dead-lettered them again (for ever, with a member that NACKs), and
 * each time under the name `_DLQ.<group>` (dead-letters.ts keeps the first).
 */
export function isReservedTopic(topic: string): boolean {
  if (topic.charCodeAt(0) !== 0x5f /* _ */) return false;
  const first = firstToken(topic);
  return first === INBOX || first === TRACE || first === DLQ;
}

/** True for `_DLQ` and `_DLQ.…` (a topic string). */
export function isDeadLetterTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x5f /* _ */ && firstToken(topic) === DLQ;
}

/** A pattern whose first token is a wildcard can match reserved topics whatever they are. */
export function startsWithWildcard(pattern: string): boolean {
  const c = pattern.charCodeAt(0);
  return (c === 0x2a /* * */ || c === 0x3e /* > */) && (pattern.length === 1 || pattern.charCodeAt(1) === 0x2e);
}

/** True for patterns on `_TRACE` itself (not wildcards that merely can match it). */
export function isTracePattern(pattern: string): boolean {
  return firstToken(pattern) === TRACE;
}

/**
 * Why connection `clientId` may not subscribe to `pattern`, or undefined
 * when it may as far as reserved prefixes go. `explicitlyAllowed` says
 * whether the client's token names this `_TRACE` pattern in its allow list.
 */
export function reservedSubscribeProblem(pattern: string, clientId: string, explicitlyAllowed: (p: string) => boolean): string | undefined {
  const first = firstToken(pattern);
  if (first === INBOX) {
    const rest = pattern.slice(INBOX_DOT.length);
    const second = firstToken(rest);
    if (pattern.length > INBOX.length && second === clientId) return undefined;
    return `"${pattern}": a client may subscribe only to its own inbox ${INBOX_DOT}${clientId}.>`;
  }
  if (first === TRACE) {
    const id = pattern.slice(TRACE_DOT.length);
    if (pattern.length > TRACE.length && isTraceId(id)) return undefined;
    if (explicitlyAllowed(pattern)) return undefined;
    return `"${pattern}": subscribe to one trace id (${TRACE_DOT}<16 hex digits>), wider patterns need a token that allows them`;
  }
  return undefined;
}

/** True for the connection's own inbox patterns: `_INBOX.<clientId>` and below. */
export function isOwnInbox(pattern: string, clientId: string): boolean {
  // Compared in place: asked for every REQ of a client with permissions (its reply topic), no substring made.
  const end = INBOX_DOT.length + clientId.length;
  return pattern.startsWith(INBOX_DOT) && pattern.startsWith(clientId, INBOX_DOT.length) && (pattern.length === end || pattern.charCodeAt(end) === 0x2e /* . */);
}

/**
 * The delivery filter of a connection that has subscriptions starting with
 * a wildcard (`>`, `*.…`): those match reserved topics too, so events on
 * other connections' inboxes and on trace ids the connection did not
 * subscribe to by name are dropped. Built only for such connections, so
 * every other connection's deliveries skip it.
 */
export class ReservedFilter {
  constructor(
    /** What this connection's inbox topics start with: `_INBOX.<client id>.` (a keyed leaf's link: `_INBOX.<leaf id>`, its clients' ids). */
    private readonly ownInbox: string,
    /**
     * Whether one of the connection's accepted `_TRACE…` patterns matches a
     * topic, kept up to date by its owner (a trie: O(topic depth)). A list
     * walked per hop record let a connection holding 10,000 trace
     * subscriptions and a `>` make each traced PUB cost the node ~7.5 ms.
     */
    private readonly traced: (topic: string) => boolean,
  ) {}

  canReceive(topic: string): boolean {
    if (topic.charCodeAt(0) !== 0x5f /* _ */) return true;
    if (topic.startsWith(INBOX_DOT)) return topic.startsWith(this.ownInbox);
    if (topic.startsWith(TRACE_DOT)) return this.traced(topic);
    return true;
  }
}
