import type { Logger } from '@meshbus/core';
/**
 * Keeps dialing the addresses this node wants links to, with exponential
 * backoff and full jitter per address, until a link to it is up.
 *
 * Seeds (the operator's list) are redialed forever. Addresses learned by
 * gossip are given up after `giveUpAfter` consecutive failures, where a
 * failure is a TCP connect that failed or a link dialed there that closed
 * before authenticating, and at once when the node there refused our
 * cluster secret (or failed to prove it knows it). A given-up address is not
 * dialed again on gossip alone (remembered up to MAX_GIVEN_UP addresses,
 * oldest forgotten first); a link to it coming up (the node dialed us)
 * clears it. At most `maxLearned` gossip-learned addresses are dialed at once.
 *
 * What an operator reads: a seed that fails is told once per way of failing
 * (`failing`: the first failure of each way, e.g. "no connection", then
 * MB_ERR_AUTH_FAILED; a seed's very first attempt failing to connect waits
 * for the second, a start-up race of nodes started together), then each way at most once per REPORT_EVERY with the
 * attempts since anything was told (`still-failing`), and once when it links
 * (`recovered`); before, every redial of a seed refusing our secret wrote a
 * warning (every 5 s at the default backoff, forever). The ways are
 * remembered apart (at most MAX_WAYS per seed), so a seed failing two ways in
 * turn (a balancer over a node refusing our secret and a dead one) is not
 * news at every attempt. Gossip-learned addresses are told once, when given up.
 */

/** How many given-up addresses are remembered. */
const MAX_GIVEN_UP = 4096;
/** How often a seed failing the same way is told again, ms. */
export const REPORT_EVERY = 5 * 60_000;
/** Ways of failing remembered per seed (reasons without an error code are ways too); the oldest told is forgotten first. */
const MAX_WAYS = 8;

interface Target {
  seed: boolean;
  failures: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  dialing: boolean;
  /** How the last failure failed (an error code, or the reason: "no connection", ...), once told. */
  failing: string | undefined;
  /** Each way of failing told in this streak, with when it was last told (ms since the epoch), oldest told first. */
  told: Map<string, number>;
  /** Failures since anything was last told. */
  untold: number;
}

/** What the redialer tells the operator (RedialerOptions.note). */
export type RedialEvent = 'gave-up' | 'too-many' | 'failing' | 'still-failing' | 'recovered';

export interface RedialNote {
  reason: string;
  /** Failed attempts: in all (gave-up, recovered) or since last told (still-failing). */
  attempts?: number;
}

export interface RedialerOptions {
  /** Backoff bounds, ms. */
  min: number;
  max: number;
  /** Consecutive failures after which a gossip-learned address is given up. */
  giveUpAfter: number;
  /** Gossip-learned addresses dialed at once, at most; more are ignored until some are connected or given up. */
  maxLearned: number;
  /** Dials `addr`; true when a connection was made (the handshake's outcome comes later, via connected()/failed()). */
  dial: (addr: string) => Promise<boolean>;
  /** Told once per address given up, once when the learned-address bound is first hit, and of failing seeds (see the class). */
  note: (event: RedialEvent, addr: string, detail: RedialNote) => void;
}

export class Redialer {
  private readonly targets = new Map<string, Target>();
  private readonly givenUp = new Set<string>();
  private learned = 0;
  private warnedFull = false;
  private stopped = false;

  constructor(private readonly o: RedialerOptions) {}

  /** Wants a link to `addr`: dials soon, then with backoff until connected() is called. */
  want(addr: string, seed: boolean): void {
    if (this.stopped) return;
    const t = this.targets.get(addr);
    if (t) {
      if (seed && !t.seed) {
        t.seed = true;
        this.learned--;
      }
      return;
    }
    if (!seed) {
      if (this.givenUp.has(addr)) return;
      if (this.learned >= this.o.maxLearned) {
        if (!this.warnedFull) this.o.note('too-many', addr, { reason: `already dialing ${this.learned} addresses learned by gossip` });
        this.warnedFull = true;
        return;
      }
      this.learned++;
    }
    const target: Target = { seed, failures: 0, timer: undefined, dialing: false, failing: undefined, told: new Map(), untold: 0 };
    this.targets.set(addr, target);
    this.schedule(addr, target, 0);
  }

  /** True while `addr` is being dialed (or waits for its next attempt). */
  wants(addr: string): boolean {
    return this.targets.has(addr);
  }

  /** True when `addr` was given up. */
  gaveUp(addr: string): boolean {
    return this.givenUp.has(addr);
  }

  /**
   * A link to `addr` is up: stop dialing it, and forget that it was ever given
   * up. `linked` false: dialing stops for another reason (another of a leaf's
   * hubs or of a region's gateway addresses linked, the address leads to this
   * node), so a failing seed is not said to have linked.
   */
  connected(addr: string, linked = true): void {
    this.givenUp.delete(addr);
    const t = this.targets.get(addr);
    if (!t) return;
    if (linked && t.failing !== undefined) this.o.note('recovered', addr, { reason: t.failing, attempts: t.failures });
    this.drop(addr, t);
  }

  /**
   * A link dialed at `addr` closed before authenticating. `refused`: the
   * node there refused our secret or could not prove its own, so a
   * gossip-learned address is given up at once.
   */
  failed(addr: string, reason: string, refused: boolean): void {
    const t = this.targets.get(addr);
    if (!t) return;
    this.failure(addr, t, reason, refused);
  }

  /**
   * Stops dialing `addr` and leaves it out of want(addr, false) (gossip, a
   * link's death) until a link to it comes up (connected): an address known
   * to be gone, e.g. a `meshbus start --workers` sibling that exited. Not
   * told: nothing failed.
   */
  forget(addr: string): void {
    const t = this.targets.get(addr);
    if (t) this.drop(addr, t);
    this.remember(addr);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) clearTimeout(t.timer);
    this.targets.clear();
    this.learned = 0;
  }

  private drop(addr: string, t: Target): void {
    clearTimeout(t.timer);
    this.targets.delete(addr);
    if (!t.seed) this.learned--;
  }

  private giveUp(addr: string, t: Target, reason: string): void {
    this.drop(addr, t);
    this.remember(addr);
    this.o.note('gave-up', addr, { reason, attempts: t.failures });
  }

  /** Remembers `addr` as given up (the oldest forgotten past MAX_GIVEN_UP); a learned slot may be free again. */
  private remember(addr: string): void {
    if (this.givenUp.size >= MAX_GIVEN_UP) this.givenUp.delete(this.givenUp.values().next().value!);
    this.givenUp.add(addr);
    this.warnedFull = false;
  }

  /** One failed attempt at `addr`: counted, told (seeds, see the class), and a gossiped address given up when it is time. */
  private failure(addr: string, t: Target, reason: string, refused: boolean): boolean {
    t.failures++;
    if (!t.seed) {
      if (refused || t.failures >= this.o.giveUpAfter) {
        this.giveUp(addr, t, refused ? reason : `${t.failures} failed attempts, last: ${reason}`);
        return true;
      }
      return false;
    }
    const kind = /^MB_ERR_[A-Z_]+/.exec(reason)?.[0] ?? reason;
    const now = Date.now();
    t.untold++;
    // A seed's very first attempt failing to connect is no news yet: nodes started together (`--workers`,
    // a deploy) dial each other before all listen, and said it at warn level at every normal start.
    // From the second failure on it is said; a refusal with a code (secret, topology) is said at once.
    if (t.failures === 1 && kind === reason) return false;
    const at = t.told.get(kind);
    if (at === undefined) this.o.note('failing', addr, { reason, attempts: t.failures });
    else if (now - at >= REPORT_EVERY) this.o.note('still-failing', addr, { reason, attempts: t.untold });
    else return false;
    t.failing = kind;
    t.told.delete(kind);
    t.told.set(kind, now);
    if (t.told.size > MAX_WAYS) t.told.delete(t.told.keys().next().value!);
    t.untold = 0;
    return false;
  }

  private schedule(addr: string, t: Target, delay: number): void {
    clearTimeout(t.timer);
    // attempt() cannot reject: the dial's failure is caught inside, the rest is synchronous bookkeeping.
    t.timer = setTimeout(() => void this.attempt(addr, t), delay);
    t.timer.unref();
  }

  private async attempt(addr: string, t: Target): Promise<void> {
    if (this.stopped || this.targets.get(addr) !== t) return;
    t.dialing = true;
    const ok = await this.o.dial(addr).catch(() => false);
    t.dialing = false;
    if (this.stopped || this.targets.get(addr) !== t) return;
    if (!ok && this.failure(addr, t, 'no connection', false)) return;
    // A connection still needs the handshake: keep the target until connected()
    // (or failed(), which counts); try again after `max` if neither came.
    const ceiling = Math.min(this.o.max, this.o.min * 2 ** Math.min(t.failures, 16));
    const delay = ok ? this.o.max : Math.random() * ceiling;
    this.schedule(addr, t, Math.max(this.o.min, delay));
  }
}

/** Says a redialer's note on `log` (ClusterNode's RedialerOptions.note, once it did what the note asks of the cluster). */
export function sayRedialNote(log: Logger, event: RedialEvent, address: string, d: RedialNote): void {
  // A refused secret or topology is the operator's to fix: said at error level.
  const level = /MB_ERR_(AUTH_FAILED|TOPOLOGY)/.test(d.reason) ? 'error' : 'warn';
  const rec = { address, reason: d.reason, attempts: d.attempts };
  if (event === 'gave-up') log.warn(rec, 'gave up dialing a gossiped peer address: it never authenticated');
  else if (event === 'too-many') log.warn(rec, 'not dialing more gossiped peer addresses');
  else if (event === 'failing') log[level](rec, `cannot link to ${address}; still dialing (said again every ${REPORT_EVERY / 60_000} min while it fails this way)`);
  else if (event === 'still-failing') log[level](rec, `still cannot link to ${address}; still dialing`);
  else log.info(rec, `linked to ${address} after ${d.attempts} failed attempts`);
}
