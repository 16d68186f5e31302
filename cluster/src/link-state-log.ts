import { THROTTLED_LOG_EVERY, throttled, type Logger } from '@meshbus/core';

interface Party {
  /** The latest change's line (it says the state). */
  msg: string;
  fields: object;
  /** Changes since the last line. */
  held: number;
}

/**
 * Up and down lines of one party's links (a hub's leaf: its key label, or
 * its id without a key): at most one line a minute per party, and the last
 * line always tells the state. A key makes a fresh leaf id per salt, so a
 * key holder cycling links would fill the log one line per change; held
 * back instead, a leaf that restarted within the minute left "leaf link
 * down" as the last word while its new link was up. Now a change is said at
 * once when the party said nothing this minute; otherwise it is held, and
 * when the minute ends the latest change is said (with `suppressed`: the
 * changes held) if any came, its state the one the party is in then. A
 * party may have several links (leaves sharing a key): the caller says in
 * `fields` how many are up (Leaves: `linksUp`), so a "down" line while
 * another link of the key is up says so.
 *
 * Memory: one entry per party that changed within the last `every` ms, at
 * most `max`; past that a change is said as any throttled line (ThrottledLog).
 * Timers are unref'd: they never keep a process alive.
 */
export class LinkStateLog {
  private readonly parties = new Map<string, Party>();

  constructor(
    private readonly logger: Logger,
    private readonly every = THROTTLED_LOG_EVERY,
    private readonly max = 1024,
  ) {}

  /** `party`'s link went up or down, said by `msg` with `fields`. */
  changed(party: string, msg: string, fields: object): void {
    const p = this.parties.get(party);
    if (p !== undefined) {
      p.msg = msg;
      p.fields = fields;
      p.held++;
      return;
    }
    if (this.parties.size >= this.max) return throttled(this.logger).info(fields, msg, msg, party);
    this.logger.info(fields, msg);
    this.parties.set(party, { msg, fields, held: 0 });
    this.windowFor(party);
  }

  private windowFor(party: string): void {
    setTimeout(() => this.windowEnds(party), this.every).unref();
  }

  private windowEnds(party: string): void {
    const p = this.parties.get(party)!;
    if (p.held === 0) {
      this.parties.delete(party);
      return;
    }
    this.logger.info({ ...p.fields, suppressed: p.held, throttled: `said at most every ${this.every / 1000} s` }, p.msg);
    p.held = 0;
    this.windowFor(party);
  }
}
