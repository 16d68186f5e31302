/**
 * The soak engine behind bench/src/soak.ts and bench/test/soak.test.ts: one
 * real `meshbus start` process and waves of raw TCP client connections. In
 * each wave every connection says HELLO, subscribes to its own topic,
 * publishes one event there and waits for it to come back (echo), then half
 * leave politely (GOODBYE + FIN) and half vanish (RST). Connections are
 * spread over loopback source addresses 127.0.0.2.. so the per-IP limit
 * (1024) is not what is measured.
 *
 * Measured per wave: the node's open file descriptors (/proc/<pid>/fd) and
 * RSS (/proc/<pid>/status) before, at the peak, and after the wave once the
 * node reports 0 client connections (GET /metrics) plus a settle time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { FrameDecoder, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { freePort, metric } from './chaos-mesh.js';
import { rssOf, sleep } from './proc.js';

/** The `meshbus` command of @meshbus/cli, run as a user runs it. */
const BIN = fileURLToPath(import.meta.resolve('@meshbus/cli/meshbus.js'));

export interface SoakOptions {
  waves?: number;
  connections?: number;
  /** Connections opened at once. */
  batch?: number;
  settleMs?: number;
  log?: (line: string) => void;
}

export interface WaveRecord {
  wave: number;
  connections: number;
  completed: number;
  failed: number;
  fdBefore: number;
  fdPeak: number;
  fdAfter: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  /** V8 heap in use after the wave (GET /metrics): live objects, unlike RSS. */
  heapUsedAfterMb: number;
  ms: number;
}

export interface SoakReport {
  startedAt: string;
  connectionsPerWave: number;
  waves: WaveRecord[];
  /** After the warm-up wave: the reference for "returns to baseline". */
  baseline: { fd: number; rssMb: number };
  totalConnections: number;
  exitCode: number | null;
  unexpectedExit: string | undefined;
}

export function fdCount(pid: number | undefined): number {
  if (!pid) return -1;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** The soft limit on open files of this process (Linux), or undefined. */
export function openFilesLimit(): number | undefined {
  try {
    const m = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+|unlimited)/);
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : undefined;
  } catch {
    return undefined;
  }
}

const HELLO = encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], name: 'soak' }) });
const GOODBYE = encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 0, reason: 'soak done' }) });

/** One client's life; resolves true when its own event came back. */
function oneClient(port: number, i: number, polite: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 200)}` });
    const dec = new FrameDecoder();
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (polite && ok) {
        s.write(GOODBYE);
        s.end();
      } else s.resetAndDestroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 20_000);
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
    s.on('connect', () => s.write(HELLO));
    const topic = `soak.c${i}`;
    s.on('data', (c: Buffer) =>
      dec.push(
        c,
        (f) => {
          if (f.type === FrameType.WELCOME) {
            s.write(encodeFrame({ type: FrameType.SUB, topic, correlation: 1 }));
            s.write(encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.from(`hello ${i}`) }));
          } else if (f.type === FrameType.PUB && f.topic === topic) finish(true);
          else if (f.type === FrameType.ERROR) finish(false);
        },
        () => finish(false),
      ),
    );
  });
}

export async function runSoak(opts: SoakOptions = {}): Promise<SoakReport> {
  const waves = opts.waves ?? 5;
  const n = opts.connections ?? 2000;
  const batch = opts.batch ?? 250;
  const settleMs = opts.settleMs ?? 2000;
  const log = opts.log ?? ((): void => {});
  const port = await freePort();
  const httpPort = await freePort();
  const child: ChildProcess = spawn(process.execPath, [BIN, 'start', '--port', String(port), '--http-port', String(httpPort), '--ws-port', 'off', '--log-level', 'warn', '--name', 'soak'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
  let expected = false;
  let unexpectedExit: string | undefined;
  const exit = new Promise<number | null>((r) =>
    child.once('exit', (code, signal) => {
      if (!expected) unexpectedExit = `node exited: code ${code} signal ${signal}: ${out.join('').slice(-1500)}`;
      r(code);
    }),
  );
  const pid = child.pid;
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const connections = async (): Promise<number> => metric(await scrape(), 'meshbus_connections', 'kind="tcp"') ?? -1;
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() - t0 > 15_000 || unexpectedExit) throw new Error(`soak node did not start: ${out.join('')}`);
    await sleep(50);
  }
  const rssMb = (): number => Math.round(((rssOf(pid) ?? 0) / 1048576) * 10) / 10;
  const records: WaveRecord[] = [];
  let baseline = { fd: fdCount(pid), rssMb: rssMb() };
  try {
    // Wave 0 warms up (JIT, buffers, pools); its end state is the baseline.
    for (let w = 0; w <= waves; w++) {
      const ws = Date.now();
      const rec: WaveRecord = { wave: w, connections: n, completed: 0, failed: 0, fdBefore: fdCount(pid), fdPeak: 0, fdAfter: 0, rssBeforeMb: rssMb(), rssPeakMb: 0, rssAfterMb: 0, heapUsedAfterMb: 0, ms: 0 };
      const sampler = setInterval(() => {
        rec.fdPeak = Math.max(rec.fdPeak, fdCount(pid));
        rec.rssPeakMb = Math.max(rec.rssPeakMb, rssMb());
      }, 100);
      // Keep `batch` clients in flight; each holds its connection until its event comes back.
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(batch, n) }, async () => {
          while (next < n) {
            const i = next++;
            if (await oneClient(port, i + w * n, i % 2 === 0)) rec.completed++;
            else rec.failed++;
          }
        }),
      );
      clearInterval(sampler);
      rec.fdPeak = Math.max(rec.fdPeak, fdCount(pid));
      rec.rssPeakMb = Math.max(rec.rssPeakMb, rssMb());
      const deadline = Date.now() + 15_000;
      while ((await connections()) > 0 && Date.now() < deadline) await sleep(100);
      await sleep(settleMs);
      rec.fdAfter = fdCount(pid);
      rec.rssAfterMb = rssMb();
      rec.heapUsedAfterMb = Math.round((metric(await scrape(), 'meshbus_memory_bytes', 'kind="heap_used"') ?? 0) / 104857.6) / 10;
      rec.ms = Date.now() - ws;
      if (w === 0) baseline = { fd: rec.fdAfter, rssMb: rec.rssAfterMb };
      records.push(rec);
      log(
        `wave ${w}${w === 0 ? ' (warm-up)' : ''}: ${rec.completed}/${n} clients completed (${rec.failed} failed) in ${rec.ms} ms; fd ${rec.fdBefore} -> peak ${rec.fdPeak} -> ${rec.fdAfter}; RSS ${rec.rssBeforeMb} -> peak ${rec.rssPeakMb} -> ${rec.rssAfterMb} MB; heap used after ${rec.heapUsedAfterMb} MB`,
      );
    }
  } finally {
    expected = true;
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  const code = await exit;
  return { startedAt: new Date(t0).toISOString(), connectionsPerWave: n, waves: records, baseline, totalConnections: n * (waves + 1), exitCode: code, unexpectedExit };
}
