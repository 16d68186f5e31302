import { ConfigError, Permissions, throttled, type Logger } from '@meshbus/core';
import type { Frame } from '@meshbus/proto';

/** Publish and subscribe rules, as in a client token's `permissions` claim (core README "Permissions"). */
export interface LeafPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

/**
 * A hub's rules for the leaves that prove a leaf key (cluster/README.md
 * "Leaf nodes"), by key label, `'*'` for the labels without their own:
 * what such a leaf may subscribe to (its interest entries) and publish
 * (its events). NATS applies a leaf connection's user permissions the same
 * way. Without rules a keyed leaf may do what any client without a token
 * may. A subscription that only overlaps a denied pattern is kept and the
 * denied topics are filtered out at delivery, as for a client.
 */
export class LeafRules {
  /** Events of the leaf dropped as outside its publish rules. */
  denied = 0;
  private toldAt = -Infinity;

  private constructor(
    private readonly p: Permissions,
    private readonly leaf: { peerId: string | undefined; sendError(code: 'MB_ERR_PERMISSION_DENIED', correlation: number, message: string): void },
    private readonly logger: Logger,
  ) {}

  /** The rules of `label` in `all` (its own, else `'*'`), for the link `leaf`; undefined when none apply. */
  static of(all: ReadonlyMap<string, Permissions> | undefined, label: string | undefined, leaf: LeafRules['leaf'], logger: Logger): LeafRules | undefined {
    if (all === undefined || label === undefined) return undefined;
    const p = all.get(label) ?? all.get('*');
    return p === undefined ? undefined : new LeafRules(p, leaf, logger);
  }

  /** Checks `rules` (ClusterOptions.leafPermissions) once, at start: ConfigError naming the label. */
  static check(rules: Record<string, LeafPermissions> | undefined): ReadonlyMap<string, Permissions> | undefined {
    if (rules === undefined) return undefined;
    if (typeof rules !== 'object' || rules === null || Array.isArray(rules)) throw new ConfigError('leafPermissions must map leaf key labels (or *) to { publish, subscribe } rules');
    const out = new Map<string, Permissions>();
    for (const [label, r] of Object.entries(rules)) {
      if (label !== '*' && !/^[A-Za-z0-9_-]{1,64}$/.test(label)) throw new ConfigError(`leafPermissions: ${JSON.stringify(label)} is not a leaf key label or *`);
      try {
        out.set(label, new Permissions(r as never));
      } catch (e) {
        throw new ConfigError(`leafPermissions ${label}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** Whether the leaf may announce interest in `pattern`. */
  maySubscribe(pattern: string): boolean {
    return this.p.canSubscribe(pattern);
  }

  /** Whether an event on `f`'s topic may go to the leaf (its subscribe rules' denies, checked at delivery). */
  admits(f: Frame): boolean {
    return !this.p.filtersDelivery || this.p.canReceiveFrame(f);
  }

  /** True when deliveries to the leaf are decided by topic (a deny rule): a run then holds one topic. */
  get filters(): boolean {
    return this.p.filtersDelivery;
  }

  /** True (dropped, counted, told at most once a minute) when the leaf may not publish `f`. */
  refusesEvent(f: Frame): boolean {
    if (this.p.canPublishFrame(f)) return false;
    this.denied++;
    const topic = f.topic.slice(0, 200);
    throttled(this.logger).warn({ leaf: this.leaf.peerId, topic, code: 'MB_ERR_PERMISSION_DENIED' }, 'leaf event outside its publish rules dropped', 'leaf publish denied', this.leaf.peerId);
    // One non-fatal ERROR a minute, not one per event: a flood is not answered in kind.
    const now = performance.now();
    if (now - this.toldAt >= 60_000) {
      this.toldAt = now;
      this.leaf.sendError('MB_ERR_PERMISSION_DENIED', 0, `publish to "${topic}" (this hub's leafPermissions; ${this.denied} dropped so far)`);
    }
    return true;
  }
}
