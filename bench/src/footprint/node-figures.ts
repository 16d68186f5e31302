/**
 * Figures of a running node: start-up time, idle RSS, RSS per idle client
 * connection. Every run starts its own node and stops it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssOf, sleep } from '../proc.js';
import type { IdleJob } from './idle-clients.js';
import { startNode, type Checkout } from './node-process.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENTS = existsSync(join(here, 'idle-clients.js')) ? join(here, 'idle-clients.js') : join(here, '..', '..', 'dist', 'footprint', 'idle-clients.js');

/** Time to settle before reading RSS (start-up allocations, lazy compilation, a GC or two). */
export const SETTLE_MS = 3000;

/** Milliseconds from spawn to the first WELCOME on the client port (wall), and the node's CPU time by then. */
export async function startupOnce(co: Checkout): Promise<{ wall: number; cpu: number }> {
  const n = await startNode(co);
  await n.stop();
  return { wall: n.startupMs, cpu: n.startupCpuMs };
}

/** Time after the first HTTP request before RSS is read again (the API it loaded has settled). */
export const AFTER_HTTP_MS = 1000;

export interface IdleFigure {
  /** Node RSS in bytes (/proc/<pid>/status VmRSS) SETTLE_MS after it accepted its first client: the figure. */
  rss: number;
  /**
   * Milliseconds for the first HTTP request (GET /healthz) right after that
   * reading: with the HTTP API loaded on demand (`meshbus start` since
   * issue #15's footprint work), the time to load it; else one request.
   */
  firstHttpMs: number;
  /** Node RSS AFTER_HTTP_MS after that request answered: the idle node once its HTTP API has been used. */
  rssAfterHttp: number;
}

/** One fresh node: its idle RSS, then the first HTTP request and the RSS after it (see IdleFigure). */
export async function idleRssOnce(co: Checkout): Promise<IdleFigure> {
  const n = await startNode(co);
  try {
    await sleep(SETTLE_MS);
    const rss = rssOf(n.pid);
    if (rss === undefined) throw new Error(`${co.label}: cannot read /proc/${n.pid}/status`);
    const t0 = performance.now();
    const r = await fetch(`http://127.0.0.1:${n.httpPort}/healthz`, { signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    const firstHttpMs = performance.now() - t0;
    if (r.status !== 200) throw new Error(`${co.label}: GET /healthz answered ${r.status}`);
    await sleep(AFTER_HTTP_MS);
    const rssAfterHttp = rssOf(n.pid);
    if (rssAfterHttp === undefined) throw new Error(`${co.label}: cannot read /proc/${n.pid}/status`);
    return { rss, firstHttpMs, rssAfterHttp };
  } finally {
    await n.stop();
  }
}

export interface ConnsFigure {
  connections: number;
  rssBefore: number;
  rssAfter: number;
  /** (rssAfter − rssBefore) / connections, bytes. */
  bytesPerConn: number;
  /** Connections still open when rssAfter was read (should equal connections). */
  openAtEnd: number;
  clientProcesses: number;
  /**
   * The node's own view (GET /v1/stats on its HTTP API) before and after:
   * connection and subscription counts (a check that every connection holds
   * its subscription) and V8 heapUsed (how much of the growth is JS heap).
   * Absent when the checkout's node has no such API.
   */
  nodeBefore?: NodeStats;
  nodeAfter?: NodeStats;
}

export interface NodeStats {
  connections: number;
  subscriptions: number;
  heapUsed: number;
}

/** The node's /v1/stats; the HTTP API may open a little after the client port (WELCOME), so it is asked again for up to 10 s. */
async function nodeStats(httpPort: number): Promise<NodeStats | undefined> {
  for (const end = Date.now() + 10_000; Date.now() < end; await sleep(100)) {
    try {
      const r = await fetch(`http://127.0.0.1:${httpPort}/v1/stats`, { signal: AbortSignal.timeout(5000) });
      if (!r.ok) continue;
      const j = (await r.json()) as { connections?: number; subscriptions?: number; memory?: { heapUsed?: number } };
      if (typeof j.connections !== 'number') return undefined;
      return { connections: j.connections, subscriptions: j.subscriptions ?? NaN, heapUsed: j.memory?.heapUsed ?? NaN };
    } catch {
      // not listening yet
    }
  }
  return undefined;
}

/** Connections per client process: well under the usual 20,000-fd hard limit, with room for the process's own fds. */
const PER_PROCESS = 5000;
/** Connections per loopback source address, under the node's default maxConnectionsPerIp (1,024). */
const PER_ADDRESS = 1000;

interface Reply {
  ev: string;
  ready?: number;
  failed?: number;
  open?: number;
  firstError?: string;
}

function ask(child: ChildProcess, msg: unknown, ev: string, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`client process: no '${ev}' within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m: Reply): void => {
      if (m.ev === ev) done(m);
    };
    const onExit = (code: number | null): void => done(new Error(`client process exited (${code})`));
    const done = (r: Reply | Error): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send(msg as object);
  });
}

/**
 * RSS growth of a fresh node for `conns` idle client connections, each with
 * one subscription, opened by separate client processes; both RSS readings
 * after `settleMs` (default SETTLE_MS). Throws when a connection could not be made ready.
 */
export async function idleConns(co: Checkout, conns: number, log: (s: string) => void, settleMs = SETTLE_MS): Promise<ConnsFigure> {
  const n = await startNode(co, { raiseFdLimit: true });
  const clients: ChildProcess[] = [];
  try {
    await sleep(settleMs);
    // The first HTTP request warms the API's code; read RSS a little after it, so that one-time cost is not counted per connection.
    const nodeBefore = await nodeStats(n.httpPort);
    await sleep(500);
    const rssBefore = rssOf(n.pid)!;
    const procs = Math.ceil(conns / PER_PROCESS);
    const t0 = performance.now();
    const replies = await Promise.all(
      Array.from({ length: procs }, (_, p) => {
        const c = fork(CLIENTS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        clients.push(c);
        const job: IdleJob = { port: n.port, first: p * PER_PROCESS, conns: Math.min(PER_PROCESS, conns - p * PER_PROCESS), perAddress: PER_ADDRESS, concurrency: 64, timeoutMs: 30_000 };
        return ask(c, job, 'ready', 180_000);
      }),
    );
    const ready = replies.reduce((a, r) => a + (r.ready ?? 0), 0);
    const err = replies.find((r) => r.firstError)?.firstError;
    if (ready < conns) throw new Error(`${co.label}: only ${ready} of ${conns} connections ready (${err ?? 'no error seen'})`);
    log(`  ${co.label}: ${conns.toLocaleString('en')} connections ready in ${((performance.now() - t0) / 1000).toFixed(1)} s; settling ${settleMs / 1000} s`);
    await sleep(settleMs);
    const rssAfter = rssOf(n.pid)!;
    const status = await Promise.all(clients.map((c) => ask(c, 'status', 'status', 10_000)));
    const openAtEnd = status.reduce((a, r) => a + (r.open ?? 0), 0);
    const nodeAfter = await nodeStats(n.httpPort);
    return { connections: conns, rssBefore, rssAfter, bytesPerConn: (rssAfter - rssBefore) / conns, openAtEnd, clientProcesses: procs, nodeBefore, nodeAfter };
  } finally {
    for (const c of clients) {
      if (c.connected) c.send('stop');
      setTimeout(() => c.kill('SIGKILL'), 2000).unref();
    }
    await n.stop();
  }
}
