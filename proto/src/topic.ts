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

/** True when the literal `topic` matches the subscription `pattern`. */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i]!;
    if (tok === '>') return t.length > i;
    if (i >= t.length) return false;
    if (tok !== '*' && tok !== t[i]) return false;
  }
  return p.length === t.length;
}

/** True when `pattern` contains a wildcard token. */
export function hasWildcard(pattern: string): boolean {
  return pattern === '*' || pattern === '>' || pattern.startsWith('*.') || pattern.endsWith('.>') || pattern.endsWith('.*') || pattern.includes('.*.');
}
