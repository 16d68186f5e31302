import { SessionError, topicProblem } from '@meshbus/proto';

/** Topic allow and deny lists (wildcards allowed); deny wins. */
export interface TopicRules {
  allow?: string[];
  deny?: string[];
}

/** A token's `permissions` claim once checked: only the keys meshbus reads, lists of valid patterns. */
export interface PermissionRules {
  publish?: TopicRules;
  subscribe?: TopicRules;
}

const SIDES = ['publish', 'subscribe'] as const;
const LISTS = ['allow', 'deny'] as const;

/**
 * The rules of a `permissions` claim, or SessionError MB_ERR_AUTH_FAILED
 * naming what is wrong. Every part the node would not read as written is
 * refused rather than skipped: a skipped part is a rule not applied, and a
 * rule not applied grants everything (`publish: ['orders.>']`, an array
 * where a map belongs, or `Allow` / NATS's `pub`, read as no rules at all,
 * let such a token subscribe to `>`). So: maps where maps belong (never
 * arrays or null), no key but `publish` / `subscribe` and `allow` / `deny`,
 * lists of strings that are valid subscription patterns. The result is a
 * copy holding only what was checked.
 */
export function permissionRules(v: unknown): PermissionRules {
  const perms = plainMap(v, 'permissions');
  const out: PermissionRules = {};
  for (const [side, rules] of Object.entries(perms)) {
    if (!(SIDES as readonly string[]).includes(side)) throw refused(`permissions has an unknown key ${JSON.stringify(side)} (only "publish" and "subscribe")`);
    if (rules === undefined) continue;
    out[side as (typeof SIDES)[number]] = topicRules(rules, `permissions.${side}`);
  }
  return out;
}

function topicRules(v: unknown, where: string): TopicRules {
  const rules = plainMap(v, where);
  const out: TopicRules = {};
  for (const [k, list] of Object.entries(rules)) {
    if (!(LISTS as readonly string[]).includes(k)) throw refused(`${where} has an unknown key ${JSON.stringify(k)} (only "allow" and "deny")`);
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw refused(`${where}.${k} must be a list of topic patterns, got ${kindOf(list)}`);
    out[k as (typeof LISTS)[number]] = list.map((p: unknown, i) => {
      if (typeof p !== 'string') throw refused(`${where}.${k}[${i}] must be a topic pattern (a string), got ${kindOf(p)}`);
      const problem = topicProblem(p, true);
      if (problem !== undefined) throw refused(`${where}.${k}[${i}] is not a topic pattern: ${problem}`);
      return p;
    });
  }
  return out;
}

function plainMap(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw refused(`${where} must be a map, got ${kindOf(v)}`);
  return v as Record<string, unknown>;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'a list' : `a ${typeof v}`;
}

function refused(detail: string): SessionError {
  return new SessionError('MB_ERR_AUTH_FAILED', `token claim ${detail}`);
}
