/**
 * Keeps dialing the addresses this node wants links to, with exponential
 * backoff and full jitter per address, until a link to it is up. Seeds are
 * redialed forever; addresses learned by gossip are given up after
 * GIVE_UP consecutive failures (the node is presumed gone for good).
 */
const GIVE_UP = 20;

interface Target {
  seed: boolean;
  failures: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  dialing: boolean;
}

export class Redialer {
  private readonly targets = new Map<string, Target>();
  private stopped = false;

  constructor(
    private readonly min: number,
    private readonly max: number,
    private readonly dial: (addr: string) => Promise<boolean>,
  ) {}

  /** Wants a link to `addr`: dials soon, then with backoff until connected() is called. */
  want(addr: string, seed: boolean): void {
    if (this.stopped) return;
    const t = this.targets.get(addr);
    if (t) {
      t.seed ||= seed;
      return;
    }
    const target: Target = { seed, failures: 0, timer: undefined, dialing: false };
    this.targets.set(addr, target);
    this.schedule(addr, target, 0);
  }

  /** A link to `addr` is up: stop dialing it. */
  connected(addr: string): void {
    const t = this.targets.get(addr);
    if (!t) return;
    clearTimeout(t.timer);
    this.targets.delete(addr);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) clearTimeout(t.timer);
    this.targets.clear();
  }

  private schedule(addr: string, t: Target, delay: number): void {
    // attempt() cannot reject: the dial's failure is caught inside, the rest is synchronous bookkeeping.
    t.timer = setTimeout(() => void this.attempt(addr, t), delay);
    t.timer.unref();
  }

  private async attempt(addr: string, t: Target): Promise<void> {
    if (this.stopped || this.targets.get(addr) !== t) return;
    t.dialing = true;
    const ok = await this.dial(addr).catch(() => false);
    t.dialing = false;
    if (this.stopped || this.targets.get(addr) !== t) return;
    // A successful TCP connect still needs the handshake; keep the target until connected().
    t.failures = ok ? t.failures : t.failures + 1;
    if (!t.seed && t.failures >= GIVE_UP) {
      this.targets.delete(addr);
      return;
    }
    const ceiling = Math.min(this.max, this.min * 2 ** Math.min(t.failures, 16));
    const delay = ok ? this.max : Math.random() * ceiling;
    this.schedule(addr, t, Math.max(this.min, delay));
  }
}
