import type { Logger } from './logger.js';

/**
 * Which log lines were said recently, so a line something outside can make
 * the node repeat (a peer link refused as a topology at every redial of a
 * misconfigured node; a durable queue's Redis connection failing at every
 * reconnect attempt: every few seconds, forever) is said once per `every` ms
 * per key, and how many times each was held back meanwhile.
 *
 * At most `max` keys are remembered. A new key past that takes the place of
 * one said longer than `every` ago, or else shares an overflow key, one per
 * kind (tell's `kind`): a sender that makes up keys (addresses, names,
 * messages) gets at most `max` + one line per kind every `every` ms, never
 * one per event. (Forgetting the oldest key instead let 1,025 made-up keys in
 * turn say a line each, every time.) With `every` Infinity the overflow key
 * is said once, ever: keys past `max` are then never said.
 */
export class ToldRecently {
  private readonly last = new Map<string, { at: number; held: number }>();

  /** every: ms before a key is said again; max: keys remembered. */
  constructor(
    private readonly every: number,
    private readonly max = 1024,
  ) {}

  /** True when `key` was not said within `every` ms; it counts as said now (else as held back). `kind`: as for tell(). */
  due(key: string, now = Date.now(), kind?: string): boolean {
    return this.tell(key, now, kind) !== undefined;
  }

  /**
   * When `key` is due: how many times it came up and was held back since it
   * was last said (0 the first time), and it counts as said now. Otherwise
   * undefined, and it counts as held back.
   *
   * `kind`: what the key says, when the key also names a party a sender
   * chooses (an address, a peer id): a new key past `max` then shares the
   * overflow key of its kind, not the one of every kind. Without it, 1,024
   * addresses failing one way made the first line of any other way of
   * failing share the key the 1,025th had just used, never said.
   */
  tell(key: string, now = Date.now(), kind?: string): number | undefined {
    const overflow = kind === undefined ? OVERFLOW : `${OVERFLOW} ${kind}`;
    let k = key;
    let e = this.last.get(k);
    if (e === undefined && this.last.size >= this.max) {
      // Insertion order is the order of saying (said keys are re-inserted): the first was said longest ago.
      const [oldKey, oldest] = this.last.entries().next().value as [string, { at: number }];
      if (now - oldest.at >= this.every) this.last.delete(oldKey);
      else e = this.last.get((k = overflow));
    }
    if (e !== undefined && now - e.at < this.every) {
      e.held++;
      return undefined;
    }
    this.last.delete(k);
    this.last.set(k, { at: now, held: 0 });
    return e?.held ?? 0;
  }
}

/** The key new keys share once `max` are remembered and none has expired. */
const OVERFLOW = '\u0000overflow';

/** How often one kind of throttled line is said again, ms. */
export const THROTTLED_LOG_EVERY = 60_000;

/**
 * Log lines that something outside the node can cause once per event: a
 * client's publish failing while Redis does not answer, a corrupt entry read
 * back from Redis, a peer's bad frame, a client that is a slow consumer at
 * every reconnect. Each kind is said at most once every `every` ms (the first
 * at once), with `suppressed`: the lines of that kind held back since the
 * last one. A node saying one line per event is a disk or log pipeline filled
 * by whoever sends the events (a silent Redis and one publisher made 48,000
 * "durable publish failed" lines in 24 s).
 *
 * `kind` defaults to the message; pass it when the message carries a value
 * (a topic, a reason) so one kind is not many: kinds are few, named by the
 * code. `party`, when given, makes it a line per kind and party (a client's
 * host, a peer id): values a sender chooses, bounded by ToldRecently's `max`.
 * Past that, new parties share one key per kind, never one for all: 1,024
 * hosts that were slow consumers within the minute made every other kind
 * new that minute (a Redis outage's "durable publish failed" included) share
 * the key the 1,025th host had just used, its first line never said.
 */
export class ThrottledLog {
  private readonly told: ToldRecently;

  constructor(
    private readonly logger: Logger,
    private readonly every = THROTTLED_LOG_EVERY,
  ) {
    this.told = new ToldRecently(every);
  }

  info(fields: object, msg: string, kind: string = msg, party?: string): void {
    const held = this.tell(kind, party);
    if (held !== undefined) this.logger.info(this.fields(fields, held), msg);
  }

  warn(fields: object, msg: string, kind: string = msg, party?: string): void {
    const held = this.tell(kind, party);
    if (held !== undefined) this.logger.warn(this.fields(fields, held), msg);
  }

  error(fields: object, msg: string, kind: string = msg, party?: string): void {
    const held = this.tell(kind, party);
    if (held !== undefined) this.logger.error(this.fields(fields, held), msg);
  }

  private tell(kind: string, party: string | undefined): number | undefined {
    return this.told.tell(party === undefined ? kind : `${kind}\u0000${party}`, undefined, kind);
  }

  private fields(fields: object, held: number): object {
    return { ...fields, ...(held > 0 ? { suppressed: held } : {}), throttled: `said at most every ${this.every / 1000} s` };
  }
}

const throttles = new WeakMap<Logger, ThrottledLog>();

/**
 * The ThrottledLog of `logger`: one per logger (each node has its own), so
 * every module of a node shares its kinds without the node passing one round.
 */
export function throttled(logger: Logger): ThrottledLog {
  let t = throttles.get(logger);
  if (t === undefined) throttles.set(logger, (t = new ThrottledLog(logger)));
  return t;
}

/** A failure's kind for a ThrottledLog key: its meshbus code, else its class name (never its message, which may carry values). */
export function errorKind(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length <= 64) return code;
  return e instanceof Error ? e.name : typeof e;
}

/**
 * Where a failure was thrown, for a ThrottledLog party: its class and its
 * stack's first frame (a file, line and column: bounded by the code, not by
 * what a sender sent). A bug: keyed by its message alone, one a client hit
 * frame after frame hid every other for as long as it went on.
 */
export function errorSite(e: unknown): string {
  const at = e instanceof Error ? e.stack?.split('\n').find((l) => l.trimStart().startsWith('at ')) : undefined;
  return `${errorKind(e)} ${at?.trim() ?? ''}`;
}
