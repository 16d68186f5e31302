import type { ClientSession } from '../../client-session.js';
import type { MeshNode } from '../../node.js';
import { connectionView, type SlowConsumerView } from '../views.js';

/** How long a disconnected slow consumer stays listed, ms. */
export const KEEP_DISCONNECTED_MS = 5 * 60_000;
/** At most this many disconnected slow consumers are remembered (the most recent). */
export const MAX_DISCONNECTED = 20;
/** At most this many live slow consumers are followed between scans (the worst). */
const MAX_FOLLOWED = 100;

interface Followed {
  session: ClientSession;
  last: SlowConsumerView;
}

/**
 * The dashboard's slow consumers, live and recently disconnected. Every
 * `intervalMs` (default 1 s) it scans the node's connections for those
 * congested or with dropped events and follows the worst MAX_FOLLOWED; one
 * it followed that is no longer open is listed as 'disconnected' (with what
 * it had pending and dropped when last seen) for KEEP_DISCONNECTED_MS, at
 * most MAX_DISCONNECTED of them. A connection that becomes slow and is
 * closed between two scans is not seen (the node's slow-consumer counter
 * still counts it). The scan costs one pass over the connections per
 * interval; the timer does not keep the process alive.
 */
export class SlowConsumerLog {
  private followed = new Map<string, Followed>();
  private readonly gone: SlowConsumerView[] = [];
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly node: MeshNode,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => this.scan(), intervalMs);
    this.timer.unref();
  }

  /** Scans now (the timer calls this; tests and list() too). */
  scan(now = Date.now()): void {
    const next = new Map<string, Followed>();
    const live: Followed[] = [];
    for (const c of this.node.connections()) {
      if (!c.congested && c.dropped === 0) continue;
      const v = connectionView(c);
      live.push({ session: c, last: { ...v, state: v.open ? 'open' : 'closing' } });
    }
    live.sort((a, b) => b.last.pending - a.last.pending || b.last.dropped - a.last.dropped);
    for (const f of live.slice(0, MAX_FOLLOWED)) next.set(f.session.clientId, f);
    for (const [id, f] of this.followed) {
      if (next.has(id)) continue;
      // Followed and no longer slow: either it caught up (still open) or it is gone.
      if (f.session.isOpen) continue;
      this.gone.unshift({ ...f.last, open: false, state: 'disconnected', disconnectedAt: new Date(now).toISOString() });
    }
    this.followed = next;
    const cutoff = new Date(now - KEEP_DISCONNECTED_MS).toISOString();
    while (this.gone.length > MAX_DISCONNECTED || (this.gone.length > 0 && this.gone[this.gone.length - 1]!.disconnectedAt! < cutoff)) this.gone.pop();
  }

  /** Live slow consumers (worst first), then disconnected ones (latest first): at most `limit`. */
  list(limit: number): SlowConsumerView[] {
    this.scan();
    const live = [...this.followed.values()].map((f) => f.last);
    return [...live, ...this.gone].slice(0, limit);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
