import { DEFAULT_MAX_TOPIC, DEFAULT_MAX_TOPIC_DEPTH } from './constants.js';
import { ProtocolError } from './errors.js';
import { utf8Length } from './utf8.js';

export interface TopicLimits {
  maxTopicLength?: number;
  maxTopicDepth?: number;
}

/**
 * Returns why `topic` is not a valid topic, or undefined when it is.
 * Publish topics are literal; subscription patterns may use `*` (exactly one
 * token) and `>` (one or more trailing tokens, last token only).
 */
export function topicProblem(topic: string, pattern: boolean, limits: TopicLimits = {}): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'topic is empty';
  const maxLen = limits.maxTopicLength ?? DEFAULT_MAX_TOPIC;
  const maxDepth = limits.maxTopicDepth ?? DEFAULT_MAX_TOPIC_DEPTH;
  if (topic.length > maxLen || utf8Length(topic) > maxLen) return `topic longer than ${maxLen} bytes`;
  let depth = 1;
  let tokenStart = 0;
  for (let i = 0; i <= topic.length; i++) {
    const c = i < topic.length ? topic.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = i - tokenStart;
      if (len === 0) return `empty token in "${topic}"`;
      if (len === 1) {
        const t = topic.charCodeAt(tokenStart);
        if ((t === 0x2a || t === 0x3e) && !pattern) return `wildcard in publish topic "${topic}"`;
        if (t === 0x3e && i !== topic.length) return `">" must be the last token in "${topic}"`;
      }
      if (i < topic.length) depth++;
      tokenStart = i + 1;
      continue;
    }
    if (c <= 0x20 || c === 0x7f) return `whitespace or control character in "${topic}"`;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A surrogate must be the high half of a pair: a lone one has no UTF-8 form
      // (it would travel as U+FFFD and match nothing).
      if (c > 0xdbff || i + 1 >= topic.length || (topic.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) {
        return `lone surrogate U+${c.toString(16).toUpperCase()} at index ${i} in the topic (cut inside a surrogate pair?)`;
      }
      i++;
    }
    if ((c === 0x2a || c === 0x3e) && (i !== tokenStart || (i + 1 < topic.length && topic.charCodeAt(i + 1) !== 0x2e))) {
      return `"${String.fromCharCode(c)}" must be a whole token in "${topic}"`;
    }
  }
  if (depth > maxDepth) return `topic deeper than ${maxDepth} tokens`;
  return undefined;
}

/** Throws ProtocolError MB_ERR_BAD_TOPIC unless `topic` is a valid publish topic. */
export function assertTopic(topic: string, limits?: TopicLimits): void {
  const p = topicProblem(topic, false, limits);
  if (p) throw new ProtocolError('MB_ERR_BAD_TOPIC', p);
}

/** Throws ProtocolError MB_ERR_BAD_TOPIC unless `pattern` is a valid subscription pattern. */
export function assertPattern(pattern: string, limits?: TopicLimits): void {
  const p = topicProblem(pattern, true, limits);
  if (p) throw new ProtocolError('MB_ERR_BAD_TOPIC', p);
}

/**
 * True when the literal `topic` matches the subscription `pattern` (`*` one
 * token, `>` one or more). Compares in place, token by token, without
 * splitting either string.
 */
export function topicMatches(pattern: string, topic: string): boolean {
  const pl = pattern.length;
  const tl = topic.length;
  let p = 0;
  let t = 0;
  for (;;) {
    if (t > tl) return false; // the pattern has a token left, the topic none
    let pe = pattern.indexOf('.', p);
    if (pe < 0) pe = pl;
    let te = topic.indexOf('.', t);
    if (te < 0) te = tl;
    const n = pe - p;
    const c = pattern.charCodeAt(p);
    if (n === 1 && c === 0x3e /* > */) return true;
    if (n !== 1 || c !== 0x2a /* * */) {
      if (te - t !== n) return false;
      for (let i = 0; i < n; i++) if (pattern.charCodeAt(p + i) !== topic.charCodeAt(t + i)) return false;
    }
    p = pe + 1;
    t = te + 1;
    if (p > pl) return t > tl;
  }
}

/** True when `pattern` contains a wildcard token. */
export function hasWildcard(pattern: string): boolean {
  return pattern === '*' || pattern === '>' || pattern.startsWith('*.') || pattern.endsWith('.>') || pattern.endsWith('.*') || pattern.includes('.*.');
}
