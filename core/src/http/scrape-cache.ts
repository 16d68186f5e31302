/**
 * GET /metrics is open (no admin token) and a scrape costs the node work in
 * proportion to what it holds (connections, file descriptors, a worker's
 * series gathered over IPC: ~40 ms of event loop per scrape with 2,000
 * clients). Rendered on every request, a few unauthenticated connections
 * scraping in a loop kept the event loop busy: event delivery through the
 * node went from p50 0.11 ms to 186 ms (p99 3 ms to 620 ms) under 8 such
 * connections. This renders at most once per `minIntervalMs` and once at a
 * time: a scrape within the interval of the last rendering gets its text,
 * and scrapes while one renders wait for it. Prometheus scrapes every 15 s
 * or so; what it sees is at most `minIntervalMs` old.
 */
export class ScrapeCache {
  private text: string | undefined;
  private renderedAt = 0;
  private inFlight: Promise<string> | undefined;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly minIntervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The exposition text: the last one while fresh or being rendered, else a new rendering. */
  get(): Promise<string> {
    if (this.inFlight) return this.inFlight;
    if (this.text !== undefined && this.now() - this.renderedAt < this.minIntervalMs) return Promise.resolve(this.text);
    const p = this.render().then(
      (text) => {
        this.text = text;
        this.renderedAt = this.now();
        this.inFlight = undefined;
        return text;
      },
      (e: unknown) => {
        // A failed rendering is not kept: the next scrape tries again.
        this.inFlight = undefined;
        throw e;
      },
    );
    this.inFlight = p;
    return p;
  }
}
