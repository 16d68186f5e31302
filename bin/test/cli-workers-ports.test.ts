import { readFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { cleanups, freePort, freePortRange, makePki, runCli, spawnCli, spawnCliOnFreePorts, trackedProcesses, until, untilProcess, type CliProcess } from '@meshbus/testkit';

/**
 * `meshbus start --workers N`: how the workers find each other's cluster
 * ports, and how they stop. Real processes, real ports.
 *
 * - The primary used to pick each worker's cluster port (bound, released) a
 *   second before the worker bound it: anything else on the machine could
 *   take it meanwhile, the client or HTTP port of the same command included,
 *   and one taken port stopped every worker (CI saw "timed out waiting for
 *   the workers to link"). Now each worker binds a port of its own choosing
 *   and the primary introduces the workers to each other.
 * - A worker signalled twice (by the primary and by a supervisor that signals
 *   the whole process group: systemd's default KillMode, `timeout`, Ctrl-C)
 *   was killed by the second SIGTERM in the middle of its drain.
 * - A review of that change (RELIABILITY.md, fifteenth session): restarts
 *   around a stop, sibling addresses (--cluster-host, TLS, leaves, port 0),
 *   dead siblings left 'down', --advertise, a primary that died.
 */

const procs = trackedProcesses();
afterEach(() => procs.stop({ group: true }));
const clean = cleanups();

const links = (p: CliProcess): number => (p.err().match(/peer link up/g) ?? []).length;

/** The JSON log lines of `p` with message `msg`. */
function logLines(p: CliProcess, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of p.err().split('\n')) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the pipe: not a log record
    }
  }
  return out;
}

/**
 * Connections to `port` that never close their side: the node's GOODBYE and end
 * leave them open, so each worker they landed on drains for its whole
 * drainTimeout (5 s). Four: node:cluster deals them in turn, two per worker.
 */
async function holdDrain(port: number): Promise<void> {
  const held: Socket[] = [];
  clean.push(() => {
    for (const s of held) s.destroy();
  });
  for (let i = 0; i < 4; i++) {
    held.push(
      await new Promise<Socket>((r, j) => {
        const s = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => r(s)).once('error', j);
        s.resume();
      }),
    );
  }
}

/** Connects until two clients landed on different workers (node:cluster deals connections in turn); `tls`: over tls://. */
async function oneClientPerWorker(port: number, tls?: { rejectUnauthorized: false }): Promise<[Client, Client]> {
  const byNode = new Map<string, Client>();
  for (let i = 0; i < 16 && byNode.size < 2; i++) {
    const c = await connect(tls ? `tls://127.0.0.1:${port}` : `127.0.0.1:${port}`, tls ? { tls } : {});
    clean.push(() => c.close());
    if (!byNode.has(c.info!.node)) byNode.set(c.info!.node, c);
  }
  expect(byNode.size).toBe(2);
  return [...byNode.values()] as [Client, Client];
}

/** An event published on `a` reaches a subscriber on `b` (publishing until interest crossed the link). */
async function routes(a: Client, b: Client, topic: string): Promise<void> {
  let got = 0;
  const sub = b.subscribe(topic, { callback: () => got++ });
  await b.flush();
  await until(() => {
    a.publish(topic, 'x');
    return got > 0;
  }, `an event from one worker to the other on ${topic}`);
  sub.unsubscribe();
}

it('links its workers when every port the primary could have picked for them is taken but the client and HTTP ports', async () => {
  // Seventeen consecutive free ports: the command's client and HTTP ports, and fifteen held here.
  const base = await freePortRange(17);
  const [port, http] = [base + 1, base + 2];
  const held: Server[] = [];
  clean.push(() => Promise.all(held.map((s) => new Promise<void>((r) => s.close(() => r())))));
  for (let p = base; p <= base + 16; p++) {
    if (p === port || p === http) continue;
    const s = createServer();
    await new Promise<void>((r, j) => s.once('error', j).listen(p, '127.0.0.1', () => r()));
    held.push(s);
  }
  // freePort's range narrowed to those ports: a port picked in advance could only be `port` or `http`.
  const w = procs.track(
    spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'info'], {
      env: { MESHBUS_PORT_RANGE: `${base}-${base + 16}` },
    }),
  );
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  await untilProcess(w, () => (w.err().match(/http api listening/g) ?? []).length >= 2, 'both workers to serve HTTP');
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'ports.a');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('a worker that died is restarted on a port of its own, linked again, and no longer dialed at its old address', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  const first = logLines(w, 'cluster listening');
  expect(first).toHaveLength(2);
  const dead = first.find((r) => r['name'] === 'node#0')!;
  const oldAddress = `127.0.0.1:${String(dead['clusterPort'])}`;
  const linksBefore = links(w);
  // The worker's pid: node:cluster's workers are the primary's children; the log names each node, not its pid.
  const pid = await workerPid(w.child.pid!, 0);
  process.kill(pid, 'SIGKILL');
  await untilProcess(w, () => logLines(w, 'cluster listening').length === 3, 'the worker to be restarted');
  await untilProcess(w, () => links(w) >= linksBefore + 2, 'the restarted worker to link to the other');
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'restart.a');
  await routes(b, a, 'restart.b');
  // The survivor was told the old address is gone: at most the one attempt made before the news came
  // (a seed's first failure is not said), never the "still dialing" warning of a seed it keeps dialing.
  await new Promise((r) => setTimeout(r, 1_500));
  expect(w.err()).not.toContain(`cannot link to ${oldAddress}`);
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('workers signalled by both the primary and the process group (systemd, timeout, Ctrl-C) drain to the end', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { group: true }));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  // Connections that keep each worker draining, and a second signal once both drain (a second Ctrl-C, systemd
  // after the primary passed its own on): it lands during the drain. Before, RawClients (they close on the
  // GOODBYE: a drain of milliseconds) and one group signal, whose two SIGTERMs a worker often took in one go:
  // the test passed against `once` 1 run in 3.
  await holdDrain(port);
  process.kill(-w.child.pid!, 'SIGTERM');
  await untilProcess(w, () => logLines(w, 'node draining').length === 2, 'both workers to drain');
  process.kill(-w.child.pid!, 'SIGTERM');
  expect(await w.exited).toBe(0);
  // Each worker finished its drain: before, the second SIGTERM killed it by the signal's default action.
  expect(logLines(w, 'node stopped')).toHaveLength(2);
});

it('a worker restarted while the stop begins is not forked behind it: every worker that served drains to "node stopped"', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { group: true }));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  // They keep the other worker draining far past the primary's 200 ms restart delay.
  await holdDrain(port);
  const killed = await workerPid(w.child.pid!, 0);
  process.kill(killed, 'SIGKILL');
  await untilProcess(w, () => w.err().includes('worker exited, restarting'), 'the primary to schedule the restart');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
  // Before, the restart was forked during the drain: neither signalled nor waited for, it served until the primary
  // exited and was then cut off by node:cluster (its clients without GOODBYE), never logging "node stopped".
  const served = new Set(logLines(w, 'cluster listening').map((r) => r['pid']));
  served.delete(killed);
  expect(new Set(logLines(w, 'node stopped').map((r) => r['pid']))).toEqual(served);
});

it('--cluster-port with a --cluster-host other than 127.0.0.1: the workers link there, and route', async () => {
  // Before, each worker was told to dial its siblings at 127.0.0.1, where none listened: never linked, "cannot link" forever.
  const { p: w, ports } = await spawnCliOnFreePorts({
    pick: async () => ({ port: await freePort(), base: await freePortRange(2) }),
    args: ({ port, base }) => ['start', '--workers', '2', '--port', String(port), '--cluster-port', String(base), '--cluster-host', '127.0.0.9', '--cluster-secret', 'workers-secret-1', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'],
    ready: (w) => links(w) >= 2,
    what: 'the workers to link',
    track: (p) => procs.track(p),
  });
  const port = ports.port;
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'host.a');
  expect(w.err()).not.toContain('cannot link');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('--mesh leaf workers link to the hub only (not to each other, which a leaf refuses) and route through it', async () => {
  const [hubPort, hubCluster, port] = [await freePort(), await freePort(), await freePort()];
  const secret = ['--cluster-secret', 'workers-secret-1'];
  const hub = procs.track(spawnCli(['start', '--port', String(hubPort), '--cluster-port', String(hubCluster), ...secret, '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--name', 'hub']));
  await untilProcess(hub, () => hub.err().includes('cluster listening'), 'the hub');
  const w = procs.track(
    spawnCli(['start', '--workers', '2', '--mesh', 'leaf', '--seeds', `127.0.0.1:${hubCluster}`, ...secret, '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']),
  );
  await untilProcess(w, () => links(w) >= 2, 'both workers to link to the hub');
  // A leaf's cluster port defaults to 0 (config.ts): before, worker i took port i (EACCES as a user: it never started).
  expect(logLines(w, 'cluster listening').every((r) => Number(r['clusterPort']) >= 1024)).toBe(true);
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'leaf.a');
  // Before, each worker was told to dial its siblings too: MB_ERR_TOPOLOGY errors on both ends, redialed for ever.
  expect(w.err()).not.toContain('MB_ERR_TOPOLOGY');
  expect(logLines(w, 'peer link up').every((r) => r['peerName'] === 'hub')).toBe(true);
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('--host 0.0.0.0 with --advertise: a worker\'s WebSocket clients are told its sibling at the --advertise host', async () => {
  // 127.0.0.4 stands in for the machine's address (the workers listen on every interface).
  const [port, ws] = [await freePort(), await freePort()];
  const w = procs.track(
    spawnCli(['start', '--workers', '2', '--host', '0.0.0.0', '--advertise', '127.0.0.4:7000', '--port', String(port), '--ws-port', String(ws), '--http-port', 'off', '--log-level', 'info']),
  );
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  const sub = procs.track(spawnCli(['sub', 'adv.>', '--count', '1', '--reconnects', '2', '--server', `ws://127.0.0.1:${ws}/`]));
  await until(() => sub.err().includes('subscribed to adv.>'), 'the subscription');
  // Drain worker 0; if the sub was not on it, once it is back and linked, worker 1.
  process.kill(await workerPid(w.child.pid!, 0), 'SIGTERM');
  await untilProcess(w, () => sub.err().includes('reconnected to') || (links(w) >= 4 && w.err().includes('worker exited, restarting')), 'worker 0 drained and back');
  if (!sub.err().includes('reconnected to')) process.kill(await workerPid(w.child.pid!, 1), 'SIGTERM');
  await until(() => sub.err().includes('reconnected to'), 'the sub to follow the drain');
  // Before, the --advertise host was dropped from each worker with its cluster address: ws://127.0.0.1 (where
  // the link came from), which a browser on another machine cannot reach.
  expect(/reconnected to ([^\s,]+)/.exec(sub.err())![1]).toBe(`ws://127.0.0.4:${ws}/`);
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('a worker killed (SIGKILL: kill -9, the OOM killer) while it still starts is restarted, not taken for a start failure', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  const first = await workerPid(w.child.pid!, 1);
  process.kill(first, 'SIGKILL');
  // Its restart, killed as soon as it is forked (long before it loaded its modules and serves).
  let restarted = first;
  await untilProcess(w, async () => (restarted = await workerPid(w.child.pid!, 1).catch(() => first)) !== first, 'the restart to be forked', undefined, 5);
  process.kill(restarted, 'SIGKILL');
  // Before: "worker failed to start: stopping every worker", exit 1, the healthy worker 0 stopped with it.
  await untilProcess(w, () => logLines(w, 'cluster listening').length === 3 && links(w) >= 4, 'worker 1 to be restarted again and linked');
  expect(logLines(w, 'cluster listening').map((r) => r['pid'])).not.toContain(restarted);
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'killed.a');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('a worker SIGKILLed at every start (the OOM killer under a memory limit too low) is not restarted for ever: exit 1', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  let last = await workerPid(w.child.pid!, 1);
  process.kill(last, 'SIGKILL');
  // The served worker, then three restarts in a row killed before serving: restarted each time; the fourth is a failure.
  for (let i = 0; i < 4; i++) {
    const before = last;
    await untilProcess(w, async () => (last = await workerPid(w.child.pid!, 1).catch(() => before)) !== before, `restart ${i + 1} to be forked`, undefined, 5);
    process.kill(last, 'SIGKILL');
  }
  expect(await w.exited).toBe(1);
  expect(logLines(w, 'worker failed to start: stopping every worker')).toHaveLength(1);
  expect(logLines(w, 'worker exited, restarting')).toHaveLength(4);
});

it('--cluster-tls on with a certificate that names the host only (no 127.0.0.1): the workers link over TLS and route', async () => {
  // Before, each worker dialed its siblings at 127.0.0.1, which the certificate does not name, with no host
  // name to check it against either (no --seeds): every handshake refused, never linked, "cannot link" warnings.
  const pki = makePki('DNS:mesh-host.test');
  const port = await freePort();
  const tls = ['--cluster-tls', 'on', '--tls-cert', pki.files.cert, '--tls-key', pki.files.key, '--tls-ca', pki.files.ca];
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), ...tls, '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link over TLS');
  // The clients' side is not under test (the certificate names no address they could check): unverified.
  const [a, b] = await oneClientPerWorker(port, { rejectUnauthorized: false });
  await routes(a, b, 'tls.a');
  expect(w.err()).not.toContain('cannot link');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('a restarted worker leaves no "down" peer behind: /v1/cluster and meshbus_peers list the live workers only', async () => {
  const [port, http] = [await freePort(), await freePort()];
  const w = procs.track(spawnCli(['start', '--workers', '3', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => links(w) >= 6, 'the three workers to link');
  for (let i = 0; i < 3; i++) {
    const linksBefore = links(w);
    process.kill(await workerPid(w.child.pid!, 1), 'SIGKILL');
    await untilProcess(w, () => links(w) >= linksBefore + 4, `restart ${i + 1} of worker 1 to link to both others`);
  }
  // One scrape holds every worker's series (the primary gathers them). Before, workers 0 and 2 each kept
  // the three dead incarnations of worker 1 as 'down' peers for ever (a port of their own each: no node
  // answering there ever replaced them): meshbus_peers{state="down"} 3 and a meshbus_peer_up 0 series apiece.
  const down = (text: string): number[] =>
    text
      .split('\n')
      .filter((l) => l.startsWith('meshbus_peers{') && l.includes('state="down"'))
      .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  let last = '';
  await untilProcess(w, async () => {
    last = await (await fetch(`http://127.0.0.1:${http}/metrics`, { headers: { connection: 'close' } })).text();
    const d = down(last);
    return d.length === 3 && d.every((n) => n === 0);
  }, 'no worker to list a down peer');
  expect(last.split('\n').filter((l) => l.startsWith('meshbus_peer_up{'))).toHaveLength(6);
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('--cluster-port 0: each worker binds a port of its own choosing (not port 1, 2, … as worker i took P+i), and they link', async () => {
  // Before, worker 1 listened on port 1: EACCES for a user (every worker stopped, exit 1), a well-known port for root.
  const port = await freePort();
  const w = procs.track(
    spawnCli(['start', '--workers', '2', '--port', String(port), '--cluster-port', '0', '--cluster-secret', 'workers-secret-1', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']),
  );
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  const ports = logLines(w, 'cluster listening').map((r) => Number(r['clusterPort']));
  expect(ports).toHaveLength(2);
  expect(ports.every((p) => p >= 1024)).toBe(true);
  const [a, b] = await oneClientPerWorker(port);
  await routes(a, b, 'zero.a');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it('workers whose primary was killed (SIGKILL, OOM) drain to "node stopped" and exit, telling their clients', async () => {
  const port = await freePort();
  const w = procs.track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { group: true }));
  await untilProcess(w, () => links(w) >= 2, 'the workers to link');
  const sub = procs.track(spawnCli(['sub', 'gone.>', '--reconnects', '0', '--server', `127.0.0.1:${port}`]));
  await untilProcess(sub, () => sub.err().includes('subscribed to gone.>'), 'the subscription');
  const workers = [await workerPid(w.child.pid!, 0), await workerPid(w.child.pid!, 1)];
  w.child.kill('SIGKILL');
  expect(await w.exited).toBe('SIGKILL');
  // Before, node:cluster's own 'disconnect' listener ended each worker at once: no drain, no GOODBYE for the sub.
  // (untilProcess, called once the primary is gone, waits for what it left behind.)
  await untilProcess(w, () => logLines(w, 'node stopped').length === 2, 'both workers to drain and stop');
  await until(() => workers.every((pid) => !alive(pid)), 'the workers to exit');
  await sub.exited;
  expect(sub.err()).toContain('MB_ERR_DRAINING');
});

it('--cluster-port P with --workers N past port 65535, or onto the client, HTTP or ws port: exit 2 naming the flags, before any port opens', async () => {
  // Before, the workers started and served; one failed to listen, on a port the user never gave ("cluster port
  // must be 0..65535, got 65536"; "cluster port <the client port> is already in use (--cluster-port …)"), and
  // stopped the others.
  const port = await freePort();
  const base = ['start', '--workers', '2', '--port', String(port), '--cluster-secret', 'workers-secret-1', '--ws-port', 'off', '--log-level', 'info'];
  const past = await runCli([...base, '--cluster-port', '65535', '--http-port', 'off']);
  expect(past.code, past.err).toBe(2);
  expect(past.err).toContain('--cluster-port 65535 with --workers 2');
  expect(past.err).not.toContain('node listening');
  const onto = await runCli([...base, '--cluster-port', String(port - 1), '--http-port', 'off']);
  expect(onto.code, onto.err).toBe(2);
  expect(onto.err).toContain(`worker 1 would take ${port}, the --port`);
  expect(onto.err).not.toContain('node listening');
  // Another address: no clash (the HTTP API on 127.0.0.2, the cluster on 127.0.0.1).
  const { p: apart } = await spawnCliOnFreePorts({
    pick: () => freePortRange(2),
    args: (pair) => [...base, '--cluster-port', String(pair), '--http-port', String(pair + 1), '--http-host', '127.0.0.2'],
    ready: (p) => links(p) >= 2,
    what: 'the workers to link',
    track: (p) => procs.track(p),
  });
  apart.child.kill('SIGTERM');
  expect(await apart.exited).toBe(0);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of worker `index` of the primary `primary`: the child whose MESHBUS_WORKER_PLAN (workers.ts) names it. */
async function workerPid(primary: number, index: number): Promise<number> {
  const children = (await readFile(`/proc/${primary}/task/${primary}/children`, 'utf8')).trim().split(/\s+/).map(Number);
  for (const pid of children) {
    const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
    const plan = env.find((e) => e.startsWith('MESHBUS_WORKER_PLAN='));
    if (plan && (JSON.parse(plan.slice('MESHBUS_WORKER_PLAN='.length)) as { index: number }).index === index) return pid;
  }
  throw new Error(`no worker ${index} among the children of ${primary}`);
}
