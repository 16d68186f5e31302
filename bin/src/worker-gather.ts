import type { Worker } from 'node:cluster';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { Logger } from '@meshbus/core';
import { thrownText } from '@meshbus/proto';

/**
 * One /metrics and one /v1/workers for `meshbus start --workers N`.
 * node:cluster hands each HTTP connection to one worker, so a worker's own
 * answer alone made successive scrapes (and dashboard polls) alternate
 * between workers. Here the worker that got the request asks the primary,
 * the primary asks every worker that serves (over the cluster IPC channel),
 * and answers with all of them:
 *
 * - `metrics`: each worker's registry (prom-client `getMetricsAsJSON()`, each
 *   series labelled `worker="<i>"`), merged with prom-client's
 *   `AggregatorRegistry.aggregate`, which keeps series with different labels
 *   apart: every scrape shows every worker.
 * - `view`: each worker's WorkerView (the dashboard's per-worker table).
 *
 * prom-client's own `AggregatorRegistry.clusterMetrics()` does the metrics
 * part from the primary, but asks every connected worker, also one still
 * starting that cannot answer yet, and then fails the whole scrape after 5 s.
 * This asks only the workers that serve and leaves out one that does not
 * answer within GATHER_MS (the scrape then shows `meshbus_workers_answered`
 * below `meshbus_workers_serving`).
 */

/** What a worker tells about itself for the dashboard (GET /v1/workers). */
export interface WorkerView {
  worker: number;
  id: string;
  name: string;
  pid: number;
  connections: number;
  subscriptions: number;
  /** Last second's rates, per second. */
  msgsIn: number;
  msgsOut: number;
  /** Event-loop delay p99 over the last second, ms. */
  lagP99Ms: number;
  /** Resident set size, bytes. */
  rss: number;
  slowConsumers: number;
}

type Kind = 'metrics' | 'view';
type Metrics = MetricObjectWithValues<MetricValue<string>>[];

/** IPC messages (objects with `t`, as the supervisor's in workers.ts). */
const ASK_PRIMARY = 'meshbus:gather?';
const PRIMARY_ANSWER = 'meshbus:gather';
const ASK_WORKER = 'meshbus:worker?';
const WORKER_ANSWER = 'meshbus:worker';

/** How long the primary waits for the workers, ms; the asking worker waits twice that for the primary. */
export const GATHER_MS = 2_000;

interface Msg {
  t: string;
  id: number;
  kind?: Kind;
  /** PRIMARY_ANSWER: the exposition text (metrics) or the views (view); absent when gathering failed. */
  result?: string | WorkerView[];
  /** WORKER_ANSWER: the worker's registry as JSON (metrics) or its view (view). */
  part?: Metrics | WorkerView;
}

const isMsg = (m: unknown): m is Msg => typeof m === 'object' && m !== null && typeof (m as Msg).t === 'string' && typeof (m as Msg).id === 'number';

/**
 * Primary side: answers a worker's request with what every serving worker
 * said. `serving()` lists the workers that said READY. Call `listen(w)` for
 * each forked worker. A failure to gather is logged to `log`; the asking
 * worker then answers with its own part.
 */
export function workerGatherer(serving: () => Worker[], log: Logger): { listen(w: Worker): void } {
  let next = 0;
  const pending = new Map<number, { want: number; got: Msg['part'][]; done: () => void }>();
  const ask = async (kind: Kind): Promise<{ asked: number; parts: Msg['part'][] }> => {
    const workers = serving().filter((w) => w.isConnected());
    const id = next++;
    const parts: Msg['part'][] = [];
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, GATHER_MS);
      const done = (): void => {
        clearTimeout(t);
        resolve();
      };
      pending.set(id, { want: workers.length, got: parts, done });
      if (workers.length === 0) done();
      for (const w of workers) w.send({ t: ASK_WORKER, id, kind });
    });
    pending.delete(id);
    return { asked: workers.length, parts };
  };
  const gather = async (kind: Kind): Promise<string | WorkerView[]> => {
    const { asked, parts } = await ask(kind);
    if (kind === 'view') return (parts as WorkerView[]).sort((a, b) => a.worker - b.worker);
    const { AggregatorRegistry } = await import('prom-client');
    // aggregate() takes one getMetricsAsJSON() array per registry.
    const text = await AggregatorRegistry.aggregate(parts.map((m) => (m as Metrics | undefined) ?? [])).metrics();
    return (
      `${text}# HELP meshbus_workers_serving Workers serving when this scrape was gathered.\n# TYPE meshbus_workers_serving gauge\nmeshbus_workers_serving ${asked}\n` +
      `\n# HELP meshbus_workers_answered Workers whose series this scrape holds (fewer than serving when one did not answer in time).\n# TYPE meshbus_workers_answered gauge\nmeshbus_workers_answered ${parts.length}\n`
    );
  };
  return {
    listen(w: Worker): void {
      w.on('message', (m: unknown) => {
        if (!isMsg(m)) return;
        if (m.t === WORKER_ANSWER) {
          const p = pending.get(m.id);
          if (!p) return;
          p.got.push(m.part);
          if (p.got.length >= p.want) p.done();
        } else if (m.t === ASK_PRIMARY && (m.kind === 'metrics' || m.kind === 'view')) {
          gather(m.kind).then(
            (result) => w.isConnected() && w.send({ t: PRIMARY_ANSWER, id: m.id, result }),
            (e: unknown) => {
              log.warn({ err: thrownText(e), kind: m.kind }, 'cannot gather from the workers: the request gets one worker\'s answer');
              return w.isConnected() && w.send({ t: PRIMARY_ANSWER, id: m.id });
            },
          );
        }
      });
    },
  };
}

/** What a worker can tell the primary; each undefined until its HTTP API is up (it answers nothing yet). */
export interface WorkerParts {
  registry(): Registry | undefined;
  view(): WorkerView | undefined;
}

/**
 * Worker side: answers the primary's requests from `parts`, and returns the
 * HTTP API's `metricsSource` and `workers` options: every worker's answer
 * through the primary, or this worker's own when the primary does not answer.
 */
export function workerSources(parts: WorkerParts): { metricsSource(own: Registry): Promise<string>; workers(): Promise<WorkerView[]> } {
  let next = 0;
  const waiting = new Map<number, (result: Msg['result']) => void>();
  const reply = (id: number, part: Metrics | WorkerView): void => {
    if (process.connected) process.send?.({ t: WORKER_ANSWER, id, part });
  };
  process.on('message', (m: unknown) => {
    if (!isMsg(m)) return;
    if (m.t === ASK_WORKER) {
      if (m.kind === 'view') {
        const v = parts.view();
        if (v) reply(m.id, v);
        return;
      }
      const r = parts.registry();
      if (!r) return;
      r.getMetricsAsJSON().then(
        (metrics) => reply(m.id, metrics),
        () => reply(m.id, []),
      );
    } else if (m.t === PRIMARY_ANSWER) {
      waiting.get(m.id)?.(m.result);
    }
  });
  const viaPrimary = async (kind: Kind): Promise<Msg['result']> => {
    if (!process.connected || !process.send) return undefined;
    const id = next++;
    const result = await new Promise<Msg['result']>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 2 * GATHER_MS);
      waiting.set(id, (x) => {
        clearTimeout(t);
        resolve(x);
      });
      process.send!({ t: ASK_PRIMARY, id, kind });
    });
    waiting.delete(id);
    return result;
  };
  return {
    async metricsSource(own) {
      const text = await viaPrimary('metrics');
      return typeof text === 'string' ? text : own.metrics();
    },
    async workers() {
      const views = await viaPrimary('view');
      if (Array.isArray(views)) return views;
      const mine = parts.view();
      return mine ? [mine] : [];
    },
  };
}
