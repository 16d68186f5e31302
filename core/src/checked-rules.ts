import { Permissions } from './auth/permissions.js';
import { subscribeProblem } from './subscription-policy.js';

/** How many subscribe rule sets a connection remembers its subscriptions were checked against. */
const REMEMBERED = 4;

/**
 * The subscribe rule sets (by key) that allow every subscription a
 * connection holds now, the current one among them: an AUTH that brings
 * back one of them (tokens alternating between two rule sets) needs no
 * walk over the subscriptions. Kept true as subscriptions come: a SUB
 * accepted under the current rules is checked against the few others
 * remembered (at most REMEMBERED - 1 checks), and a set that would deny it
 * is forgotten, so the next AUTH with it checks everything again. Leaving
 * subscriptions cannot make it false. Before, each AUTH whose rules
 * differed from the last checked every subscription: tokens of one subject
 * alternating between two rule sets made each AUTH cost ~17 ms with 10,000
 * subscriptions held.
 */
export class CheckedRules {
  /** Rule sets by key, least recently used first. */
  private readonly sets = new Map<string, Permissions | undefined>();

  constructor(private readonly clientId: string) {}

  /**
   * An AUTH replaced rules `before` by `now`: `walk` (check every
   * subscription against `now`, ending those it denies) unless `now` decides
   * as `before` or is remembered to allow every subscription held.
   */
  refreshed(before: Permissions | undefined, now: Permissions | undefined, walk: () => void): void {
    if (Permissions.sameSubscribeRules(before, now)) return;
    // Before the first change of rules, every subscription held was checked against the connection's first ones.
    if (this.sets.size === 0) this.checked(before);
    if (!this.needsCheck(now)) return;
    walk();
    this.checked(now);
  }

  /** A SUB to `pattern` was accepted under `current`: forget the other rule sets that deny it. */
  subscribed(pattern: string, current: Permissions | undefined): void {
    if (this.sets.size < 2) return;
    const now = Permissions.subscribeRulesKey(current);
    for (const [key, p] of this.sets) if (key !== now && subscribeProblem(pattern, this.clientId, p) !== undefined) this.sets.delete(key);
  }

  /** The connection now has `p`: whether every subscription must be checked against it (true), or is known to be allowed. */
  private needsCheck(p: Permissions | undefined): boolean {
    const key = Permissions.subscribeRulesKey(p);
    if (!this.sets.has(key)) return true;
    this.sets.delete(key);
    this.sets.set(key, p);
    return false;
  }

  /** Every subscription was checked against `p` (and those it denies ended). */
  private checked(p: Permissions | undefined): void {
    const key = Permissions.subscribeRulesKey(p);
    this.sets.delete(key);
    this.sets.set(key, p);
    for (const k of this.sets.keys()) {
      if (this.sets.size <= REMEMBERED) break;
      this.sets.delete(k);
    }
  }
}
