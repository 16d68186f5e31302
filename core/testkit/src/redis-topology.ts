import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { ping, redisServerInstalled } from './redis.js';

/**
 * Redis deployments started by the tests on loopback free ports, in temp
 * directories, without persistence, killed by stop(): a 3-primary Redis
 * Cluster and a primary + replica watched by 3 sentinels. Both use only
 * `redis-server` (sentinels run as `redis-server <conf> --sentinel`) and
 * `redis-cli` (to create the cluster), from Debian's redis-server/redis-tools.
 */

export interface Topology {
  /** What `durable.redis` takes for it. */
  url: string;
  stop(): Promise<void>;
}

export interface SentinelTopology extends Topology {
  /** Port of the server that is primary now (asks a sentinel). */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary; resolves once a sentinel names another one (bounded). */
  killPrimary(onKilled?: () => void, timeoutMs?: number): Promise<{ old: number; next: number; ms: number }>;
  /** Starts a killed server again on its port, empty, as a replica of the current primary (what the sentinels would make it, sooner); resolves once it is in sync. */
  revive(port: number, timeoutMs?: number): Promise<void>;
}

/** True when the binaries these deployments need are installed. */
export function topologyToolsInstalled(): boolean {
  return redisServerInstalled() && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
}

interface Proc {
  port: number;
  child: ChildProcess;
}

function spawnRedis(args: string[]): ChildProcess {
  return spawn('redis-server', args, { stdio: 'ignore' });
}

async function waitPing(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ping(port))) {
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not start`);
    await sleep(50);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function killAll(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** Runs one command on a server and returns its reply (a short-lived connection). */
export async function redisCall(port: number, ...args: Array<string | number>): Promise<unknown> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return await r.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    r.disconnect();
  }
}

async function until(cond: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Three primaries, no replicas, slots spread by `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<Topology> {
  const dir = mkdtempSync(join(tmpdir(), 'mb-rcluster-'));
  const procs: Proc[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // The cluster bus port is chosen too: its default, port + 10000, lies in the kernel's
      // ephemeral range (32768-60999) for most of freePort's ports, where an outgoing
      // connection may hold it ("redis on port ... did not start" in a loaded run).
      let bus = await freePort();
      while (bus === port) bus = await freePort();
      const child = spawnRedis([
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
        '--dir', dir,
      ]);
      procs.push({ port, child });
    }
    for (const p of procs) await waitPing(p.port);
    const hosts = procs.map((p) => `127.0.0.1:${p.port}`);
    const made = spawnSync('redis-cli', ['--cluster', 'create', ...hosts, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (made.status !== 0) throw new Error(`redis-cli --cluster create failed: ${made.stdout}${made.stderr}`);
    for (const p of procs) {
      await until(async () => String(await redisCall(p.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `cluster state ok on ${p.port}`, 15_000);
    }
    return {
      url: `redis-cluster://${hosts.join(',')}`,
      stop: async () => {
        await killAll(procs);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await killAll(procs);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * A TCP proxy to `target` on a free loopback port that delays what the target
 * sends by `delayMs`, and drops whatever it still holds when the target's side
 * closes: a replica lagging `delayMs` behind its primary, which loses the
 * replication stream it has not received yet when the primary dies.
 */
async function lagProxy(target: number, delayMs: number): Promise<{ port: number; close(): void }> {
  // No Nagle on either side: a replica's small REPLCONF ACK held back by Nagle and delayed ACKs (up to 200 ms) would be a proxy artefact.
  const server = net.createServer({ noDelay: true }, (down) => {
    const up = net.connect({ port: target, host: '127.0.0.1', noDelay: true });
    const pending = new Set<ReturnType<typeof setTimeout>>();
    let dead = false;
    const kill = (): void => {
      dead = true;
      for (const t of pending) clearTimeout(t);
      pending.clear();
      down.destroy();
      up.destroy();
    };
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      const t = setTimeout(() => {
        pending.delete(t);
        if (!dead) down.write(d);
      }, delayMs);
      pending.add(t);
    });
    for (const sock of [up, down]) {
      sock.on('error', kill);
      sock.on('close', kill);
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => server.close() };
}

export interface SentinelOptions {
  /** The replica replicates through a lagProxy with this delay, ms (0: directly). */
  replicationDelayMs?: number;
  /**
   * The sentinels' failover-timeout, ms (default 2000). A sentinel repoints a
   * replica that replicates from another address than the primary's (the lag
   * proxy) after this long, and fails a master over again only after twice it.
   */
  failoverTimeoutMs?: number;
}

/**
 * A primary, one replica and three sentinels (quorum 2, primary judged down
 * after 1 s), master name `mymaster`. Resolves once the replica is in sync and
 * every sentinel knows the replica and the two other sentinels (what a
 * failover needs).
 */
export async function startSentinelSetup(opts: SentinelOptions = {}): Promise<SentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'mb-rsentinel-'));
  const procs: Proc[] = [];
  const data: Proc[] = [];
  const sentinels: Proc[] = [];
  let revivable: (port: number) => string[] = () => [];
  let closeProxy = (): void => {};
  try {
    const primary = await freePort();
    const replica = await freePort();
    const proxy = opts.replicationDelayMs ? await lagProxy(primary, opts.replicationDelayMs) : undefined;
    closeProxy = () => proxy?.close();
    const dataArgs = (port: number): string[] => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    revivable = dataArgs;
    for (const [port, extra] of [
      [primary, []],
      [replica, ['--replicaof', '127.0.0.1', String(proxy?.port ?? primary)]],
    ] as Array<[number, string[]]>) {
      const child = spawnRedis([...dataArgs(port), ...extra]);
      const p = { port, child };
      procs.push(p);
      data.push(p);
    }
    for (const p of data) await waitPing(p.port);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor mymaster 127.0.0.1 ${primary} 2`,
          'sentinel down-after-milliseconds mymaster 1000',
          `sentinel failover-timeout mymaster ${opts.failoverTimeoutMs ?? 2000}`,
          'sentinel parallel-syncs mymaster 1',
          '',
        ].join('\n'),
      );
      const child = spawnRedis([conf, '--sentinel']);
      const p = { port, child };
      procs.push(p);
      sentinels.push(p);
    }
    for (const p of sentinels) await waitPing(p.port);
    await until(async () => /master_link_status:up/.test(String(await redisCall(replica, 'INFO', 'replication'))), 'replica in sync', 15_000);
    for (const s of sentinels) {
      await until(
        async () => {
          const reps = (await redisCall(s.port, 'SENTINEL', 'REPLICAS', 'mymaster')) as unknown[];
          const others = (await redisCall(s.port, 'SENTINEL', 'SENTINELS', 'mymaster')) as unknown[];
          return reps.length === 1 && others.length === 2;
        },
        `sentinel ${s.port} to know the replica and the other sentinels`,
        20_000,
      );
    }
    const primaryPort = async (): Promise<number> => {
      for (const s of sentinels) {
        if (s.child.exitCode !== null) continue;
        const addr = (await redisCall(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster').catch(() => null)) as string[] | null;
        if (addr) return Number(addr[1]);
      }
      throw new Error('no sentinel answers');
    };
    return {
      url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/mymaster`,
      primaryPort,
      async killPrimary(onKilled, timeoutMs = 30_000) {
        const old = await primaryPort();
        const t0 = Date.now();
        const dying = killAll(data.filter((p) => p.port === old));
        onKilled?.();
        await dying;
        let next = old;
        await until(
          async () => {
            next = await primaryPort();
            if (next === old) return false;
            // The promoted replica answers as a primary.
            return /role:master/.test(String(await redisCall(next, 'INFO', 'replication')));
          },
          'a sentinel failover',
          timeoutMs,
        );
        return { old, next, ms: Date.now() - t0 };
      },
      async revive(port, timeoutMs = 30_000) {
        const p = { port, child: spawnRedis([...revivable(port), '--replicaof', '127.0.0.1', String(await primaryPort())]) };
        procs.push(p);
        data.push(p);
        await waitPing(port);
        await until(async () => /master_link_status:up/.test(String(await redisCall(port, 'INFO', 'replication'))), `revived ${port} in sync as a replica`, timeoutMs);
      },
      stop: async () => {
        closeProxy();
        await killAll(procs);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    closeProxy();
    await killAll(procs);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
