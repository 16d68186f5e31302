/**
 * One input that holds bytes the node has read but cannot act on yet: a
 * connection's unfinished frame (TCP clients, peer links), a WebSocket
 * message's unfinished fragments, an HTTP request body not yet complete.
 */
export interface InputHolder {
  /** Bytes charged to the budget now (the budget keeps it). */
  inputCharge: number;
  /** Date.now() when the budget paused this input, 0 while it reads. */
  inputWaitSince: number;
  /**
   * Bytes this input has received so far (any count that grows with what
   * arrives), or -1 while something else than the budget keeps it from
   * sending (flow control, a token being verified): such an input is not
   * slow by its own choice.
   */
  inputProgress(): number;
  /** Stops reading (the budget is full). */
  inputPause(): void;
  /** Reads again, unless something else wants it paused. */
  inputResume(): void;
  /** Closes the input with MB_ERR_INPUT_BUDGET (`why` in words). */
  inputEvict(why: string): void;
}

/** How an InputBudget is sized and timed. */
export interface InputBudgetOptions {
  /** Bytes every input together may hold of unfinished frames, messages and bodies. */
  limit: number;
  /**
   * ms: while inputs wait for the budget, a holder that sent less than
   * READ_SIZE in this long is closed, and an input that waited 3 times this
   * long is closed.
   */
  stall: number;
}

/** What one read may add past the budget before its input is paused (a socket read is at most 64 KiB); also the least a holder must send per `stall` while others wait. */
export const READ_SIZE = 64 * 1024;

/** Where a holder's progress was last looked at, and how long it waited for the budget since. */
interface Mark {
  at: number;
  bytes: number;
  /** ms paused by the budget since `at`, waits that ended (the current one counts from inputWaitSince). */
  waited: number;
}

/**
 * The node-wide input budget (SPEC 9.5): the sum, over every connection
 * and request, of the bytes held of a frame, WebSocket message or HTTP body
 * that has not arrived whole. An input whose read leaves the sum past the
 * limit while it holds such bytes stops reading (TCP backpressure) and waits
 * in arrival order; it reads again once the sum is below the limit. While
 * anyone waits, a holder that sent less than READ_SIZE over `stall` ms (a
 * slow-loris half-frame, idle or dribbling) is closed, and a waiter after
 * 3 × `stall`: a sender that keeps sending gets through, slow holders are
 * the ones closed.
 *
 * Costs nothing for input that arrives whole: only an input holding bytes
 * calls charge().
 */
export class InputBudget {
  readonly limit: number;
  readonly stall: number;
  /** Bytes held now, every input together. */
  used = 0;
  /** Highest `used` seen. */
  peak = 0;
  /** Times an input was paused for the budget / closed by it. */
  waits = 0;
  evictions = 0;
  /** Every input holding bytes, with where its progress was last looked at. */
  private readonly holders = new Map<InputHolder, Mark>();
  private readonly waiting = new Set<InputHolder>();
  /**
   * The input let read past the limit because every holder waited (none of
   * them could finish and free the budget): it reads on until it holds
   * nothing, so at most one frame, message or body is past the limit.
   */
  private head: InputHolder | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(o: InputBudgetOptions) {
    this.limit = o.limit;
    this.stall = o.stall;
  }

  /** Bytes left before the limit (0 past it): what a decoder may allocate ahead of what it needs (FrameDecoder `room`). */
  readonly room = (): number => Math.max(0, this.limit - this.used);

  /** Inputs holding bytes now. */
  get holding(): number {
    return this.holders.size;
  }

  /** Inputs paused for the budget now. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * `h` now holds `bytes` (0: nothing; a closed input must be charged 0).
   * Pauses it when its charge grew and the budget is past its limit.
   */
  charge(h: InputHolder, bytes: number): void {
    const before = h.inputCharge;
    if (before > 0 && bytes > 0) this.progressed(h);
    // Bytes read into room already charged cost nothing: only a charge that grows can be made to wait.
    if (bytes === before) return;
    this.used += bytes - before;
    h.inputCharge = bytes;
    if (this.used > this.peak) this.peak = this.used;
    if (bytes === 0) {
      if (h === this.head) this.head = undefined;
      this.holders.delete(h);
      if (h.inputWaitSince !== 0) {
        h.inputWaitSince = 0;
        this.waiting.delete(h);
      }
    } else if (before === 0) this.holders.set(h, { at: Date.now(), bytes: h.inputProgress(), waited: 0 });
    if (bytes > before) {
      if (this.used > this.limit && h.inputWaitSince === 0 && h !== this.head) {
        this.wait(h);
        this.unblock(Date.now());
      }
    } else if (this.waiting.size > 0) {
      this.wake();
      // The head done, and what it freed not enough to wake anyone: the next oldest goes on.
      this.unblock(Date.now());
    }
  }

  /**
   * When every input holding bytes waits for the budget, none can finish
   * what it holds and free it: honest senders each paused with part of a
   * frame would wait until the stall rule closed them all. The oldest waiter
   * then reads on past the limit (the head) until it holds nothing.
   */
  private unblock(now: number): void {
    if (this.head !== undefined || this.waiting.size === 0 || this.waiting.size < this.holders.size) return;
    const h = this.waiting.values().next().value as InputHolder;
    this.head = h;
    this.resumeWaiter(h, now);
  }

  private resumeWaiter(h: InputHolder, now: number): void {
    this.waiting.delete(h);
    // The wait is not held against its progress (it could send nothing), but adds to its waiting time.
    const m = this.holders.get(h);
    if (m !== undefined) m.waited += now - h.inputWaitSince;
    h.inputWaitSince = 0;
    h.inputResume();
  }

  private wait(h: InputHolder): void {
    h.inputWaitSince = Date.now();
    this.waiting.add(h);
    this.waits++;
    h.inputPause();
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(Date.now()), Math.max(10, this.stall / 4));
      this.timer.unref();
    }
  }

  /** Lets waiting inputs read again, oldest first, as many as the room left can take one read of. */
  private wake(): void {
    let room = this.limit - this.used;
    const now = Date.now();
    for (const h of this.waiting) {
      if (room <= 0) break;
      room -= READ_SIZE;
      this.resumeWaiter(h, now);
    }
    if (this.waiting.size === 0) this.stop();
  }

  /** Marks `h` again once it sent READ_SIZE since its mark (called at each read of a holder: the mark is when it last progressed). */
  private progressed(h: InputHolder): void {
    const m = this.holders.get(h);
    if (m === undefined) return;
    const p = h.inputProgress();
    if (p < 0 || m.bytes < 0 || p - m.bytes >= READ_SIZE) this.remark(h, m, Date.now());
  }

  private remark(h: InputHolder, m: Mark, now: number): void {
    m.at = now;
    m.bytes = h.inputProgress();
    m.waited = 0;
    if (h.inputWaitSince !== 0) h.inputWaitSince = now;
  }

  /**
   * While inputs wait: a holder that sent READ_SIZE since its mark is marked
   * again; one that did not is closed once it had `stall` ms to send, the
   * time the budget kept it paused counting a third: after `stall` ms of
   * reading, 3 × `stall` of waiting, or any mix (a holder woken only to send
   * a few bytes and wait again: a dribble).
   */
  sweep(now: number): void {
    if (this.waiting.size === 0) return this.stop();
    for (const [h, m] of [...this.holders]) {
      const progress = h.inputProgress();
      if (progress < 0 || m.bytes < 0 || progress - m.bytes >= READ_SIZE) {
        this.remark(h, m, now);
        continue;
      }
      // Time to show progress: the time it could send, and a third of the time the budget paused it.
      const waited = m.waited + (h.inputWaitSince !== 0 ? now - h.inputWaitSince : 0);
      if (now - m.at - (2 * waited) / 3 >= this.stall) {
        this.evict(h, `held ${h.inputCharge} bytes of unfinished input and sent ${progress - m.bytes} bytes in ${now - m.at} ms (${waited} ms of them paused) while the node's input budget (${this.limit} bytes) was full`);
      }
    }
    if (this.used <= this.limit) this.wake();
    this.unblock(now);
    if (this.waiting.size === 0) this.stop();
  }

  private evict(h: InputHolder, why: string): void {
    this.evictions++;
    this.charge(h, 0);
    h.inputEvict(why);
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops the sweep timer (the node closes). */
  close(): void {
    this.stop();
  }
}

/** The default budget: 64 MiB, and at least 4 of the node's largest frames (so one connection alone never wants more than a quarter). */
export function defaultInputBudget(maxFrameLength: number): number {
  return Math.max(64 * 1024 * 1024, 4 * maxFrameLength);
}
