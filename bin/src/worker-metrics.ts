import type { Worker } from 'node:cluster';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { Logger } from '@meshbus/core';

/**
 * One /metrics for `meshbus start --workers N`. node:cluster hands each HTTP
 * connection to one worker, so each worker's own registry alone made
 * successive scrapes alternate between workers. Here the worker that got
 * the scrape asks the primary, the primary asks every worker that serves for
 * its registry (prom-client's `getMetricsAsJSON()`, each series labelled
 * `worker="<i>"`) and merges them with prom-client's
 * `AggregatorRegistry.aggregate`, which keeps series with different labels
 * apart: every scrape shows every worker.
 *
 * prom-client's own `AggregatorRegistry.clusterMetrics()` does the same from
 * the primary, but asks every connected worker, also one still starting that
 * cannot answer yet, and then fails the whole scrape after 5 s; this asks only
 * the workers that serve and leaves out one that does not answer within
 * GATHER_MS (the scrape then lacks that worker's series, and says so in
 * `meshbus_workers_answered` below `meshbus_workers_serving`).
 */

/** IPC message types (objects with `t`), distinct from the supervisor's READY string. */
const ASK_PRIMARY = 'meshbus:metrics?';
const PRIMARY_ANSWER = 'meshbus:metrics';
const ASK_WORKER = 'meshbus:worker-metrics?';
const WORKER_ANSWER = 'meshbus:worker-metrics';

/** How long the primary waits for the workers' registries, ms; the asking worker waits twice that for the primary. */
export const GATHER_MS = 2_000;

interface Msg {
  t: string;
  id: number;
  text?: string;
  metrics?: MetricObjectWithValues<MetricValue<string>>[];
}

const isMsg = (m: unknown): m is Msg => typeof m === 'object' && m !== null && typeof (m as Msg).t === 'string' && typeof (m as Msg).id === 'number';

/**
 * Primary side: answers a worker's ASK_PRIMARY with every serving worker's
 * series. `serving()` lists the workers that said READY. Call `listen(w)` for
 * each forked worker. A failure to gather is logged to `log`; the asking
 * worker then answers with its own series.
 */
export function metricsGatherer(serving: () => Worker[], log: Logger): { listen(w: Worker): void } {
  let next = 0;
  const pending = new Map<number, { want: number; got: Msg['metrics'][]; done: () => void }>();
  const gather = async (): Promise<string> => {
    const { AggregatorRegistry } = await import('prom-client');
    const workers = serving().filter((w) => w.isConnected());
    const id = next++;
    const got: Msg['metrics'][] = [];
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, GATHER_MS);
      const done = (): void => {
        clearTimeout(t);
        resolve();
      };
      pending.set(id, { want: workers.length, got, done });
      if (workers.length === 0) done();
      for (const w of workers) w.send({ t: ASK_WORKER, id });
    });
    pending.delete(id);
    // aggregate() takes one getMetricsAsJSON() array per registry.
    const text = await AggregatorRegistry.aggregate(got.map((m) => m ?? [])).metrics();
    return (
      `${text}# HELP meshbus_workers_serving Workers serving when this scrape was gathered.\n# TYPE meshbus_workers_serving gauge\nmeshbus_workers_serving ${workers.length}\n` +
      `\n# HELP meshbus_workers_answered Workers whose series this scrape holds (fewer than serving when one did not answer in time).\n# TYPE meshbus_workers_answered gauge\nmeshbus_workers_answered ${got.length}\n`
    );
  };
  return {
    listen(w: Worker): void {
      w.on('message', (m: unknown) => {
        if (!isMsg(m)) return;
        if (m.t === WORKER_ANSWER) {
          const p = pending.get(m.id);
          if (!p) return;
          p.got.push(m.metrics);
          if (p.got.length >= p.want) p.done();
        } else if (m.t === ASK_PRIMARY) {
          gather().then(
            (text) => w.isConnected() && w.send({ t: PRIMARY_ANSWER, id: m.id, text }),
            (e: unknown) => {
              log.warn({ err: String(e) }, 'cannot gather the workers\' metrics: the scrape gets one worker\'s');
              return w.isConnected() && w.send({ t: PRIMARY_ANSWER, id: m.id });
            },
          );
        }
      });
    },
  };
}

/**
 * Worker side: answers the primary's ASK_WORKER with `registry()`'s series
 * (undefined until the HTTP API is up: answers nothing yet), and returns the
 * `metricsSource` for the worker's HTTP API: every worker's series through
 * the primary, or this worker's own when the primary does not answer.
 */
export function workerMetrics(registry: () => Registry | undefined): (own: Registry) => Promise<string> {
  let next = 0;
  const waiting = new Map<number, (text: string | undefined) => void>();
  process.on('message', (m: unknown) => {
    if (!isMsg(m)) return;
    if (m.t === ASK_WORKER) {
      const r = registry();
      if (!r) return;
      r.getMetricsAsJSON().then(
        (metrics) => process.connected && process.send?.({ t: WORKER_ANSWER, id: m.id, metrics }),
        () => process.connected && process.send?.({ t: WORKER_ANSWER, id: m.id, metrics: [] }),
      );
    } else if (m.t === PRIMARY_ANSWER) {
      waiting.get(m.id)?.(m.text);
    }
  });
  return async (own) => {
    if (!process.connected || !process.send) return own.metrics();
    const id = next++;
    const text = await new Promise<string | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 2 * GATHER_MS);
      waiting.set(id, (x) => {
        clearTimeout(t);
        resolve(x);
      });
      process.send!({ t: ASK_PRIMARY, id });
    });
    waiting.delete(id);
    return text ?? own.metrics();
  };
}
