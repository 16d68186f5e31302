import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, spawnCli, trackedProcesses, until } from '@meshbus/testkit';

/**
 * Exit codes and messages the README's table promises, found wrong by a
 * newcomer review: a bad option exits 2 (systemd's RestartPreventExitStatus)
 * naming the flag; pub, sub and reply wait for the node's verdict before
 * saying they succeeded; reply ends 0 on SIGTERM like sub; cluster says a
 * given admin token was refused. Real `meshbus` processes on loopback.
 */

const { track, stop: stopProcesses } = trackedProcesses();
afterAll(async () => {
  await stopProcesses();
});

/** `meshbus start` with `args` and the HTTP API on a free port; resolves once /readyz answers 200. */
async function startNode(args: string[]): Promise<{ server: string; http: string }> {
  const [port, http] = [await freePort(), await freePort()];
  const p = track(spawnCli(['start', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'warn', ...args]));
  await until(async () => (await fetch(`http://127.0.0.1:${http}/readyz`).catch(() => undefined))?.status === 200 || p.child.exitCode !== null, 'the node to be ready');
  expect(p.child.exitCode, p.err()).toBeNull();
  return { server: `127.0.0.1:${port}`, http: `http://127.0.0.1:${http}` };
}

describe('start: a bad option exits 2 and names the flag', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--max-node-subscriptions', '0'], /--max-node-subscriptions must be a positive integer, got 0/],
    [['--max-subscriptions-per-ip', '0'], /--max-subscriptions-per-ip must be a positive integer/],
    [['--max-connections', '0'], /--max-connections must be a positive integer/],
    [['--ping-interval', '0'], /--ping-interval must be a positive integer/],
    [['--max-payload', '0'], /--max-payload must be 1\.\.\d+ bytes, got 0/],
    [['--token', 'x'], /needs an admin token \(set adminToken \/ --admin-token/],
    [['--max-node-subscriptions', '-1'], /--max-node-subscriptions must be a whole number of at least 0, got "-1"/],
  ];
  for (const [args, message] of cases) {
    it(`start ${args.join(' ')}`, async () => {
      const r = await runCli(['start', '--port', '0', '--http-port', '0', '--ws-port', 'off', '--log-level', 'warn', ...args]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/maxNodeSubscriptions|maxSubscriptionsPerIp|maxConnections|pingInterval|maxPayload/);
    });
  }

  it('names the MESHBUS_ variable when the value came from the environment; --workers passes the 2 on', async () => {
    const env = await runCli(['start', '--port', '0', '--http-port', '0', '--ws-port', 'off', '--log-level', 'warn'], 15_000, { MESHBUS_MAX_CONNECTIONS: '0' });
    expect(env.code, env.err).toBe(2);
    expect(env.err).toContain('MESHBUS_MAX_CONNECTIONS must be a positive integer');
    const port = await freePort();
    const w = await runCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn', '--max-connections', '0']);
    expect(w.code, w.err).toBe(2);
    expect(w.err).toContain('--max-connections must be a positive integer');
  });

  // Durable options are nested in the node (durable.quota.maxEventBytes): their errors named those paths, not the flags.
  const durableCases: Array<[string[], Record<string, string>, string]> = [
    [['--durable-max-event-bytes', '0'], {}, '--durable-max-event-bytes must be a positive integer'],
    [['--durable-queue-max-jobs', '0'], {}, '--durable-queue-max-jobs must be a positive integer'],
    [['--durable-queue-inactive', '500'], {}, '--durable-queue-inactive must be 0 (never) or an integer of at least 1000 ms, got 500'],
    [['--durable-queue-max-per-host', '0'], {}, '--durable-queue-max-per-host must be a positive integer'],
    [[], { MESHBUS_DURABLE_QUEUE_INACTIVE: '999' }, 'MESHBUS_DURABLE_QUEUE_INACTIVE must be 0 (never) or an integer of at least 1000 ms, got 999'],
    [['--durable', 'a.>|topics=0'], {}, '--durable: "a.>": topics=N must be a positive integer'],
    [['--durable', 'a.'], {}, '--durable: pattern "a.": invalid topic'],
    [[], { MESHBUS_DURABLE_DELAYED_EVENTS: '0' }, 'MESHBUS_DURABLE_DELAYED_EVENTS must be a positive integer'],
    [[], { MESHBUS_DURABLE_DELAYED_BYTES: '0' }, 'MESHBUS_DURABLE_DELAYED_BYTES must be a positive integer'],
    [['--redis', 'redis-cluster://127.0.0.1:1/2'], {}, '--redis: redis-cluster:// takes no path'],
    // Any whole number was taken: 99999999 replicas can never confirm, every durable publish was NACKed.
    [['--redis-wait-replicas', '99999999'], {}, '--redis-wait-replicas must be a whole number from 0 to 16, got "99999999"'],
    [['--redis-wait-replicas', '17'], {}, '--redis-wait-replicas must be a whole number from 0 to 16, got "17"'],
    [['--redis-wait-replicas', '1.5'], {}, '--redis-wait-replicas must be a whole number of at least 0, got "1.5"'],
    [[], { MESHBUS_REDIS_WAIT_REPLICAS: '-1' }, 'MESHBUS_REDIS_WAIT_REPLICAS must be a whole number of at least 0, got "-1"'],
  ];
  for (const [args, env, says] of durableCases) {
    it(`start --redis … ${[...args, ...Object.keys(env)].join(' ')} names its flag or variable`, async () => {
      // Refused while the options are checked, before anything connects: no Redis needed (port 1 never answers).
      const redis = args.includes('--redis') ? [] : ['--redis', 'redis://127.0.0.1:1'];
      const r = await runCli(['start', '--port', '0', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn', ...redis, ...args], 15_000, env);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).not.toMatch(/durable[ .](quota|queues|topics|redis)|maxEventBytes|maxJobs|delayedEvents|delayedBytes|maxTopics|waitReplicas/);
    });
  }

  // The HTTP API's options are nested too (http.maxConnections).
  for (const [args, env, says] of [
    [['--http-max-connections', '0'], {}, '--http-max-connections must be a positive integer'],
    [[], { MESHBUS_HTTP_MAX_PIPELINED: '0' }, 'MESHBUS_HTTP_MAX_PIPELINED must be a positive integer'],
    [['--http-max-waiting', '0'], {}, '--http-max-waiting must be a positive integer, got 0'],
  ] as Array<[string[], Record<string, string>, string]>) {
    it(`start ${[...args, ...Object.keys(env)].join(' ')} names its flag or variable`, async () => {
      const r = await runCli(['start', '--port', '0', '--http-port', '0', '--ws-port', 'off', '--log-level', 'warn', ...args], 15_000, env);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).not.toMatch(/http[ .]max|maxConnections|maxPipelined|maxWaiting/);
    });
  }

  // The cluster's addresses: '"bad" is not host:port' named no setting at all.
  for (const [args, env, says] of [
    [['--seeds', 'bad'], {}, '--seeds: "bad" is not host:port'],
    [[], { MESHBUS_SEEDS: '127.0.0.1:1,bad' }, 'MESHBUS_SEEDS: "bad" is not host:port'],
    [['--region', 'us', '--gateways', 'eu=bad'], {}, '--gateways (region eu): "bad" is not host:port'],
    [['--advertise', 'bad'], {}, '--advertise "bad": cluster address is not host:port'],
    [['--max-leaf-links', '0'], {}, '--max-leaf-links must be a positive integer'],
  ] as Array<[string[], Record<string, string>, string]>) {
    it(`start ${[...args, ...Object.keys(env)].join(' ')} names its flag or variable`, async () => {
      const r = await runCli(['start', '--port', '0', '--cluster-port', '0', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn', ...args], 15_000, env);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
    });
  }

  it('a port in use still exits 1 (a restart may find it free)', async () => {
    const { server } = await startNode([]);
    const r = await runCli(['start', '--port', server.split(':')[1]!, '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn']);
    expect(r.code, r.err).toBe(1);
    // Naming the settings that chose it (it named none).
    expect(r.err).toContain(`port ${server.split(':')[1]!} on 127.0.0.1 is already in use (--port, --host)`);
    const cluster = await runCli(['start', '--port', '0', '--cluster-port', server.split(':')[1]!, '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn']);
    expect(cluster.code, cluster.err).toBe(1);
    expect(cluster.err).toContain('already in use (--cluster-port, --cluster-host)');
  });
});

describe('client commands wait for the node\'s verdict', () => {
  const secret = 'exit-codes-secret';
  let jwtNode: { server: string; http: string };
  let limited: { server: string; http: string };
  let token: string;
  beforeAll(async () => {
    [jwtNode, limited] = await Promise.all([startNode(['--jwt-secret', secret, '--admin-token', 'adm']), startNode(['--publish-rate', '2'])]);
    const t = await runCli(['token', '--sub', 'demo-user', '--secret', secret, '--pub', 'demo.>', '--sub-allow', 'demo.>']);
    expect(t.code, t.err).toBe(0);
    token = t.out.trim();
  });

  it('pub exits 1 and prints the refusal when the token does not allow the topic; 0 when it does', async () => {
    const denied = await runCli(['pub', 'other.x', 'hi', '--server', jwtNode.server, '--token', token]);
    expect(denied.code, denied.err).toBe(1);
    expect(denied.err).toContain('permission denied: publish to "other.x" (MB_ERR_PERMISSION_DENIED)');
    const allowed = await runCli(['pub', 'demo.x', 'hi', '--server', jwtNode.server, '--token', token]);
    expect(allowed.code, allowed.err).toBe(0);
  });

  it('pub exits 1 and says so when the node rate-limits some of its events', async () => {
    const r = await runCli(['pub', 'r.x', 'hi', '--count', '10', '--server', limited.server]);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain('MB_ERR_RATE_LIMITED');
  });

  it('sub prints the refusal, not "subscribed", and exits 1', async () => {
    const r = await runCli(['sub', 'other.x', '--server', jwtNode.server, '--token', token], 10_000);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain('permission denied: subscribe to "other.x"');
    expect(r.err).not.toContain('subscribed to');
  });

  it('sub and reply refused for too many subscriptions on the node exit 1 without saying they serve', async () => {
    const full = await startNode(['--max-node-subscriptions', '1']);
    const holder = track(spawnCli(['sub', 'held.>', '--server', full.server]));
    await until(() => holder.err().includes('subscribed to') || holder.child.exitCode !== null, 'the first sub to hold the only subscription');
    const sub = await runCli(['sub', 'more.>', '--server', full.server], 10_000);
    expect(sub.code, sub.err).toBe(1);
    expect(sub.err).toContain('MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    expect(sub.err).not.toContain('subscribed to');
    const reply = await runCli(['reply', 'svc.more', 'ok', '--server', full.server], 10_000);
    expect(reply.code, reply.err).toBe(1);
    expect(reply.err).toContain('MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    expect(reply.err).not.toContain('serving requests');
    holder.child.kill('SIGTERM');
    expect(await holder.exited).toBe(0);
  });

  it('reply exits 0 on SIGTERM and on SIGINT, as sub does', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const p = track(spawnCli(['reply', 'svc.x', 'ok', '--server', limited.server]));
      await until(() => p.err().includes('serving requests') || p.child.exitCode !== null, 'reply to serve');
      p.child.kill(signal);
      expect(await p.exited, p.err()).toBe(0);
      expect(p.err()).not.toContain('MB_ERR_CONNECTION_CLOSED');
    }
  });

  it('cluster with a wrong --admin-token says the token was refused', async () => {
    const wrong = await runCli(['cluster', '--http', jwtNode.http, '--admin-token', 'wrong']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('refused the --admin-token given');
    expect(wrong.err).not.toContain('give --admin-token');
    const none = await runCli(['cluster', '--http', jwtNode.http]);
    expect(none.code).toBe(1);
    expect(none.err).toContain('give --admin-token');
  });
});
