import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { inOperatorTerms, isWildcardHost, unknownStartVariables, type StartConfig } from './config.js';
import { nodeIdentity, startServer } from './start.js';
import { guardNodeProcess } from './node-process.js';
import { onNpmLauncherExit } from './launcher-watch.js';
import { takeEarlySignal } from './early-signals.js';
import { jsonLogger, memoryNow } from '@meshbus/core';
import { hostPort } from '@meshbus/proto';
import { workerGatherer, workerSources, type WorkerView } from './worker-gather.js';
import type { RunningServer } from './start.js';
import { endStartupTiering } from './startup-tiering.js';

/**
 * `meshbus start --workers N`: one node per core. The primary process only
 * supervises; each worker is a full meshbus node. Workers share the client
 * port (node:cluster hands accepted connections round-robin to workers, the
 * TreeScale design of one acceptor and one event loop per core), and each
 * worker has its own cluster port, linked to the others as a full mesh over
 * loopback: the same peer protocol that joins machines joins the cores, so
 * routing between workers needs no other mechanism. With --cluster-port P,
 * worker i listens for peers on P+i and other machines see each worker as a
 * node of the mesh; without it, each worker binds a loopback port of its own
 * choosing (port 0: a port picked for it beforehand could be taken by
 * anything else on the machine before the worker, a second later, binds it,
 * and one taken port stopped every worker). A worker that serves tells the
 * primary the address its siblings reach its cluster port at (siblingAddress);
 * the primary gives it the addresses of the workers already serving to dial
 * (so each pair links once, dialed by the later one), and tells the others to
 * stop dialing a worker that exited. Leaves (--mesh leaf) are not introduced:
 * a leaf links to a hub only, and the hub routes between them.
 */
export async function runWorkers(cfg: StartConfig, flags: Record<string, unknown> = {}): Promise<number> {
  return cluster.isPrimary ? supervise(cfg) : runWorker(cfg, flags);
}

/**
 * IPC between the primary and its workers (objects with `t`, as worker-gather.ts's).
 * READY, worker → primary, once it serves: from then on, a worker that exits is
 * restarted. SIBLINGS, primary → worker: cluster addresses to dial (as seeds)
 * and to stop dialing.
 */
const READY = 'meshbus:worker-ready';
const SIBLINGS = 'meshbus:siblings';
interface ReadyMsg {
  t: typeof READY;
  /** Where a sibling on this machine dials this worker's cluster port (siblingAddress). */
  address: string;
}
interface SiblingsMsg {
  t: typeof SIBLINGS;
  dial: string[];
  forget: string[];
}
const isMsg = <M extends { t: string }>(m: unknown, t: M['t']): m is M => typeof m === 'object' && m !== null && (m as { t?: unknown }).t === t;

/** Workers of one index SIGKILLed in a row before serving that are restarted (supervise). */
const MAX_KILLED_UNSERVED = 3;

interface WorkerPlan {
  index: number;
  /** --cluster-port + index, or 0 (no --cluster-port, or 0): the worker picks its own (see runWorkers). */
  clusterPort: number;
  /** Secret of the loopback links between workers when the user gave none. */
  secret: string | undefined;
}

async function supervise(cfg: StartConfig): Promise<number> {
  // The primary's start-up is over: it supervises from here (startup-tiering.ts).
  endStartupTiering();
  const log = jsonLogger(cfg.logLevel, { role: 'primary' });
  guardNodeProcess(log);
  for (const u of unknownStartVariables()) log.warn(u, 'environment variable ignored: no setting of meshbus start reads it');
  const n = cfg.workers;
  // Workers that only mesh among themselves still authenticate their links.
  const secret = cfg.clusterSecret ?? (cfg.clusterPort === undefined ? randomBytes(24).toString('hex') : undefined);
  let stopping = false;
  // Leaves link to hubs only (a leaf refuses links, and cannot be another's hub): no sibling to dial.
  const introduce = cfg.mesh !== 'leaf';
  /** Per worker index, its workers SIGKILLed in a row before serving (see the exit handler). */
  const killedUnserved = new Map<number, number>();
  /** The exit code once a worker failed to start: 2 when it exited 2 (a bad setting), else 1. */
  let failed: number | undefined;
  /** Workers that serve, with the address their siblings dial their cluster port at. */
  const serving = new Map<Worker, string>();
  const tell = (w: Worker, m: SiblingsMsg): void => {
    // A worker exiting right now: its channel may be closed (the callback takes the error).
    if (w.isConnected()) w.send(m, () => undefined);
  };
  const gatherer = workerGatherer(() => [...serving.keys()], log);
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
    // --cluster-port 0 (also a leaf's default: config.ts) is "any port" for each worker: before, worker i got port i
    // (1, 2, …: EACCES for a user, a well-known port taken for root), and `--mesh leaf --workers N` never started.
    const plan: WorkerPlan = { index, clusterPort: cfg.clusterPort ? cfg.clusterPort + index : 0, secret };
    const w = cluster.fork({ MESHBUS_WORKER_PLAN: JSON.stringify(plan) });
    let ready = false;
    w.on('message', (m: unknown) => {
      if (!isMsg<ReadyMsg>(m, READY) || ready) return;
      ready = true;
      killedUnserved.delete(index);
      if (introduce) tell(w, { t: SIBLINGS, dial: [...serving.values()], forget: [] });
      serving.set(w, m.address);
    });
    gatherer.listen(w);
    w.once('exit', (code, signal) => {
      const gone = serving.get(w);
      serving.delete(w);
      if (stopping) return;
      if (gone !== undefined && introduce) for (const other of serving.keys()) tell(other, { t: SIBLINGS, dial: [], forget: [gone] });
      // SIGKILL never comes from the worker itself (a crash aborts, a bad setting exits 1 or 2): an
      // operator's kill -9 or the OOM killer, which a restart answers, as for a worker that served.
      // Before, one landing on a worker still starting (a restart killed again) stopped every worker.
      // Not for ever: killed MAX_KILLED_UNSERVED times in a row before serving (a memory limit too low
      // for N workers, the OOM killer at every start), it is a failure to start.
      const kills = !ready && signal === 'SIGKILL' ? (killedUnserved.get(index) ?? 0) + 1 : 0;
      if (kills > 0) killedUnserved.set(index, kills);
      if (!ready && (signal !== 'SIGKILL' || kills > MAX_KILLED_UNSERVED)) {
        // It never served (a port taken, a bad setting): a restart would fail the
        // same way, forever, while the primary looks alive. Stop and say so.
        failed ??= code === 2 ? 2 : 1;
        log.error({ worker: index, code, signal }, 'worker failed to start: stopping every worker');
        stopAll();
        return;
      }
      log.warn({ worker: index, code, signal }, 'worker exited, restarting');
      // Not once the stop began meanwhile: stopAll neither signals nor waits for a worker forked after
      // it, which then served until the primary exited and was cut off there without a drain.
      setTimeout(() => {
        if (!stopping) fork(index);
      }, 200);
    });
  };
  for (let i = 0; i < n; i++) fork(i);
  // `on`, not `once`: a supervisor that signals the whole process group (systemd's default
  // KillMode, `timeout`, a second Ctrl-C) must not kill the primary by a signal's default
  // action while its workers drain. stopAll acts once.
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
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
  // A port of the worker's own choosing: --advertise cannot name it (it still names the machine to clients).
  const ownPort = plan.clusterPort === 0;
  const workerCfg: StartConfig = {
    ...cfg,
    workers: 1,
    name: `${cfg.name || 'node'}#${i}`,
    clusterHost: host,
    clusterPort: plan.clusterPort,
    // Without --cluster-port the workers' links stay on loopback; with a port of its own choosing the cluster
    // address is not advertised (startServer's ownClusterPort), while the --advertise host still names this
    // machine to other nodes' TCP and WebSocket clients.
    advertise: cfg.advertise && !ownPort ? `${cfg.advertise.replace(/:\d+$/, '')}:${plan.clusterPort}` : cfg.advertise,
    // The configured seeds; the siblings come from the primary once this worker serves.
    seeds: cfg.seeds,
    mesh: cfg.mesh,
    clusterSecret: plan.secret,
  };
  // Listen for the stop before starting (the primary's SIGTERM reaches a worker still
  // starting when another failed or the user stopped): it drains once up, as `start` does.
  let early = false;
  let stop = (): void => void (early = true);
  // Every one, not the first only: a worker is signalled by the primary and, when the whole group is
  // (systemd's default KillMode, `timeout`, Ctrl-C), by the supervisor too; a second SIGTERM left
  // to its default action killed the worker in the middle of its drain.
  process.on('SIGTERM', () => stop());
  process.on('SIGINT', () => stop());
  // The primary is gone (even SIGKILLed): a worker must not live on alone; it drains, as on SIGTERM.
  process.once('disconnect', () => stop());
  // node:cluster's own 'disconnect' listener ends a worker at once (process.exit) unless this is set:
  // before, a worker whose primary died cut its clients without GOODBYE and never logged "node stopped".
  if (cluster.worker) cluster.worker.exitedAfterDisconnect = true;
  if (takeEarlySignal() !== undefined) early = true;
  // The guard is installed before anything starts: a rejection during start-up is logged too.
  const identity = await nodeIdentity(workerCfg);
  guardNodeProcess(identity.logger);
  // Every worker's series on every scrape (each labelled with its worker) and every worker
  // in /v1/workers, whichever worker the connection landed on (worker-gather.ts).
  let running: RunningServer | undefined;
  const sources = workerSources({ registry: () => running?.http?.loaded?.registry, view: () => running && workerView(i, running) });
  const server = await startServer(workerCfg, undefined, identity, { metricsLabels: { worker: String(i) }, ...sources }, ownPort).catch((e: unknown) => {
    // As `meshbus start`: a bad option is a UsageError naming the flag (exit 2), which the primary passes on.
    throw inOperatorTerms(e, flags);
  });
  running = server;
  process.on('message', (m: unknown) => {
    if (!isMsg<SiblingsMsg>(m, SIBLINGS)) return;
    for (const a of m.forget) server.cluster?.forgetAddress(a);
    for (const a of m.dial) server.cluster?.addSeed(a);
  });
  const ready: ReadyMsg = { t: READY, address: siblingAddress(host, server.cluster?.port ?? 0) };
  process.send?.(ready);
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

/**
 * Where a sibling on this machine dials a cluster port bound on `host`: that
 * host (127.0.0.1 before, whatever --cluster-host said: workers bound to
 * another address never linked), loopback for a wildcard.
 */
function siblingAddress(host: string, port: number): string {
  if (isWildcardHost(host)) return `${host.includes(':') ? '[::1]' : '127.0.0.1'}:${port}`;
  return hostPort(host, port);
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
