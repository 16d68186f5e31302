import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { inOperatorTerms, unknownStartVariables, type StartConfig } from './config.js';
import { nodeIdentity, startServer } from './start.js';
import { logUnhandledRejections } from './rejection-guard.js';
import { onNpmLauncherExit } from './launcher-watch.js';
import { takeEarlySignal } from './early-signals.js';
import { freePort, jsonLogger, memoryNow } from '@meshbus/core';
import { workerGatherer, workerSources, type WorkerView } from './worker-gather.js';
import type { RunningServer } from './start.js';

/**
 * `meshbus start --workers N`: one node per core. The primary process only
 * supervises; each worker is a full meshbus node. Workers share the client
 * port (node:cluster hands accepted connections round-robin to workers, the
 * TreeScale design of one acceptor and one event loop per core), and each
 * worker has its own cluster port, linked to the others as a full mesh over
 * loopback: the same peer protocol that joins machines joins the cores, so
 * routing between workers needs no other mechanism. With --cluster-port P,
 * worker i listens for peers on P+i and other machines see each worker as a
 * node of the mesh.
 */
export async function runWorkers(cfg: StartConfig, flags: Record<string, unknown> = {}): Promise<number> {
  return cluster.isPrimary ? supervise(cfg) : runWorker(cfg, flags);
}

/** What a worker tells the primary once it serves: from then on, a worker that exits is restarted. */
const READY = 'meshbus:worker-ready';

interface WorkerPlan {
  index: number;
  clusterPorts: number[];
  /** Secret of the loopback links between workers when the user gave none. */
  secret: string | undefined;
}

async function supervise(cfg: StartConfig): Promise<number> {
  const log = jsonLogger(cfg.logLevel, { role: 'primary' });
  logUnhandledRejections(log);
  for (const u of unknownStartVariables()) log.warn(u, 'environment variable ignored: no setting of meshbus start reads it');
  const n = cfg.workers;
  const clusterPorts: number[] = [];
  for (let i = 0; i < n; i++) clusterPorts.push(cfg.clusterPort !== undefined ? cfg.clusterPort + i : await freePort());
  // Workers that only mesh among themselves still authenticate their links.
  const secret = cfg.clusterSecret ?? (cfg.clusterPort === undefined ? randomBytes(24).toString('hex') : undefined);
  let stopping = false;
  /** The exit code once a worker failed to start: 2 when it exited 2 (a bad setting), else 1. */
  let failed: number | undefined;
  const serving = new Set<Worker>();
  const gatherer = workerGatherer(() => [...serving], log);
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());
    let left = workers.length;
    if (left === 0) finish();
    for (const w of workers) {
      w!.once('exit', () => {
        if (--left === 0) finish();
      });
      w!.process.kill('SIGTERM');
    }
  };
  const fork = (index: number): void => {
    const plan: WorkerPlan = { index, clusterPorts, secret };
    const w = cluster.fork({ MESHBUS_WORKER_PLAN: JSON.stringify(plan) });
    let ready = false;
    w.on('message', (m: unknown) => {
      if (m !== READY) return;
      ready = true;
      serving.add(w);
    });
    gatherer.listen(w);
    w.once('exit', (code, signal) => {
      serving.delete(w);
      if (stopping) return;
      if (!ready) {
        // It never served (a port taken, a bad setting): a restart would fail the
        // same way, forever, while the primary looks alive. Stop and say so.
        failed ??= code === 2 ? 2 : 1;
        log.error({ worker: index, code, signal }, 'worker failed to start: stopping every worker');
        stopAll();
        return;
      }
      log.warn({ worker: index, code, signal }, 'worker exited, restarting');
      setTimeout(() => fork(index), 200);
    });
  };
  for (let i = 0; i < n; i++) fork(i);
  process.once('SIGTERM', stopAll);
  process.once('SIGINT', stopAll);
  // One that came while the modules loaded (early-signals.ts): the workers just forked are stopped.
  if (takeEarlySignal() !== undefined) stopAll();
  onNpmLauncherExit(stopAll);
  await done;
  return failed ?? 0;
}

async function runWorker(cfg: StartConfig, flags: Record<string, unknown>): Promise<number> {
  const plan = JSON.parse(process.env.MESHBUS_WORKER_PLAN ?? '{}') as WorkerPlan;
  const i = plan.index;
  const external = cfg.clusterPort !== undefined;
  const host = external ? cfg.clusterHost : '127.0.0.1';
  const others = plan.clusterPorts.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p}`);
  const workerCfg: StartConfig = {
    ...cfg,
    workers: 1,
    name: `${cfg.name || 'node'}#${i}`,
    clusterHost: host,
    clusterPort: plan.clusterPorts[i]!,
    advertise: cfg.advertise ? `${cfg.advertise.replace(/:\d+$/, '')}:${plan.clusterPorts[i]}` : undefined,
    // Each worker meshes with its siblings (and the configured seeds); a full mesh needs one of them.
    seeds: [...cfg.seeds, ...others.slice(0, 1)],
    mesh: cfg.mesh,
    clusterSecret: plan.secret,
  };
  // Listen for the stop before starting (the primary's SIGTERM reaches a worker still
  // starting when another failed or the user stopped): it drains once up, as `start` does.
  let early = false;
  let stop = (): void => void (early = true);
  process.once('SIGTERM', () => stop());
  process.once('SIGINT', () => stop());
  // The primary is gone (even SIGKILLed): a worker must not live on alone.
  process.once('disconnect', () => stop());
  if (takeEarlySignal() !== undefined) early = true;
  // The guard is installed before anything starts: a rejection during start-up is logged too.
  const identity = nodeIdentity(workerCfg);
  logUnhandledRejections(identity.logger);
  // Every worker's series on every scrape (each labelled with its worker) and every worker
  // in /v1/workers, whichever worker the connection landed on (worker-gather.ts).
  let running: RunningServer | undefined;
  const sources = workerSources({ registry: () => running?.http?.loaded?.registry, view: () => running && workerView(i, running) });
  const server = await startServer(workerCfg, undefined, identity, { metricsLabels: { worker: String(i) }, ...sources }).catch((e: unknown) => {
    // As `meshbus start`: a bad option is a UsageError naming the flag (exit 2), which the primary passes on.
    throw inOperatorTerms(e, flags);
  });
  running = server;
  process.send?.(READY);
  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = (): void => {
      if (stopping) return;
      stopping = true;
      // then(resolve, resolve): handles both outcomes, so the chain cannot reject.
      void server.stop().then(resolve, resolve);
    };
    if (early) stop();
  });
  process.exit(0);
}

/** This worker, for the dashboard's per-worker table; undefined without the HTTP API (its rates live there). */
function workerView(worker: number, s: RunningServer): WorkerView | undefined {
  if (!s.http) return undefined;
  const rates = s.http.history.latest();
  return {
    worker,
    id: s.node.id,
    name: s.node.options.name,
    pid: process.pid,
    connections: s.node.connectionCount,
    subscriptions: s.node.table.size,
    msgsIn: rates.msgsIn,
    msgsOut: rates.msgsOut,
    lagP99Ms: rates.lagP99Ms,
    rss: memoryNow().rss,
    slowConsumers: s.node.stats.slowConsumers,
  };
}
