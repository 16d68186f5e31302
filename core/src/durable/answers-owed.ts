/**
 * The acked publishes each publisher still waits to hear about (ACK or NACK
 * not sent yet: the store has not answered), and who waits for there to be
 * none: a node's drain sends a client its GOODBYE only once every acked
 * publish it read from that client is answered (SPEC 10.7), so a client that
 * reads the GOODBYE knows the ones still unanswered were not taken.
 * Holds an entry only while something is owed.
 */
export class AnswersOwed {
  private readonly owed = new Map<object, { n: number; wake?: () => void }>();

  /** One more answer owed to `from`, paid once `answered` settles (either way: its ACK/NACK has gone out by then). */
  owe(from: object, answered: Promise<unknown>): void {
    const e = this.owed.get(from);
    if (e) e.n++;
    else this.owed.set(from, { n: 1 });
    const paid = (): void => this.paid(from);
    answered.then(paid, paid);
  }

  private paid(from: object): void {
    const e = this.owed.get(from);
    if (!e || --e.n > 0) return;
    this.owed.delete(from);
    e.wake?.();
  }

  /** Resolves once nothing is owed to `from`; undefined when nothing is now. */
  settled(from: object): Promise<void> | undefined {
    const e = this.owed.get(from);
    if (!e) return undefined;
    return new Promise<void>((resolve) => {
      const before = e.wake;
      e.wake = () => {
        before?.();
        resolve();
      };
    });
  }
}
