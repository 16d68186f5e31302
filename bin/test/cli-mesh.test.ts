import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { trackedProcesses, stopStartedRedis, testRedis } from '@meshbus/testkit';
import { portFree, runCli, spawnCli, until, type CliProcess } from '@meshbus/testkit';

/**
 * Issue #16 with several real nodes: `sub` follows a draining node to
 * another one, `cluster` shows the whole mesh, `history` reads a durable
 * topic (a node with --redis) and refuses a topic that is not durable, and
 * a short --cluster-secret is refused before any port opens.
 */

const { track, stop: stopProcesses } = trackedProcesses();
afterAll(async () => {
  await stopProcesses();
  await stopStartedRedis();
});

interface Node {
  server: string;
  http: string;
  cluster: number;
  p: CliProcess;
}

async function startNode(args: string[] = []): Promise<Node> {
  const port = await freePort();
  const http = await freePort();
  const cluster = await freePort();
  const p = track(spawnCli(['start', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--cluster-port', String(cluster), '--cluster-secret', 'test-secret-123', '--log-level', 'info', ...args]));
  const url = `http://127.0.0.1:${http}`;
  await until(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 'the node to be ready');
  return { server: `127.0.0.1:${port}`, http: url, cluster, p };
}

async function peersUp(n: Node): Promise<number> {
  const v = (await (await fetch(`${n.http}/v1/cluster`)).json()) as { peers: { state: string }[] };
  return v.peers.filter((p) => p.state === 'up').length;
}

describe('a two-node mesh', () => {
  it('cluster lists both nodes; sub --server a,b keeps receiving after the node it is on drains (SIGTERM)', async () => {
    const a = await startNode();
    const b = await startNode(['--seeds', `127.0.0.1:${a.cluster}`]);
    await until(async () => (await peersUp(a)) === 1 && (await peersUp(b)) === 1, 'the link between the nodes');

    const table = await runCli(['cluster', '--http', b.http]);
    expect(table.code, table.err).toBe(0);
    const rows = table.out.split('\n').filter((l) => /^[0-9a-f]{16}/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => /\s+up\s+/.test(r))).toBe(true);
    // ADDRESS is where clients connect, for every row (the peer's row named its cluster port).
    expect(rows.find((r) => r.includes(' * '))).toContain(` ${b.server} `);
    expect(rows.find((r) => !r.includes(' * '))).toContain(` ${a.server} `);
    expect(table.out).toContain('2 node(s), mesh joined');

    const sub = track(spawnCli(['sub', 'follow.>', '--count', '2', '--server', `${a.server},${b.server}`]));
    await until(() => sub.err().includes(`subscribed to follow.> on tcp://${a.server}`), 'the subscription on node a');
    expect((await runCli(['pub', 'follow.x', 'before', '--server', a.server])).code).toBe(0);
    await until(() => sub.out().includes('before'), 'the event published before the drain');

    a.p.child.kill('SIGTERM');
    expect(await a.p.exited).toBe(0);
    await until(() => sub.err().includes(`reconnected to tcp://${b.server}`), 'the subscription to move to node b');
    expect(sub.err()).toContain('is draining');
    expect((await runCli(['pub', 'follow.y', 'after', '--server', b.server])).code).toBe(0);
    expect(await sub.exited).toBe(0);
    expect(sub.out()).toBe('[#1] follow.x: before\n[#2] follow.y: after\n');
  });
});

it('history prints a durable topic\'s positions and newest events, pub --ack its positions; both exit 1 on a topic that is not durable', async (ctx) => {
  const redis = await testRedis(ctx);
  try {
    const n = await startNode(['--redis', redis.url, '--redis-prefix', redis.prefix, '--durable', 'hist.>|history=100']);
    expect((await runCli(['pub', 'hist.a', 'one', '--server', n.server])).code).toBe(0);
    // pub --ack prints each event's position; --json as one object per event.
    const acked = await runCli(['pub', 'hist.a', 'two', '--ack', '--server', n.server]);
    expect(acked.code, acked.err).toBe(0);
    expect(acked.out).toMatch(/^\[#1\] hist\.a: stored at [0-9a-f]{16}:2\n$/);
    const ackedJson = await runCli(['pub', 'hist.a', 'three', '--ack', '--json', '--server', n.server]);
    expect(ackedJson.code, ackedJson.err).toBe(0);
    expect(JSON.parse(ackedJson.out)).toMatchObject({ n: 1, topic: 'hist.a', offset: 3 });
    // An acked or delayed publish on a topic no rule covers: exit 1 with the typed error, nothing stored.
    for (const flag of ['--ack', '--delay']) {
      const refused = await runCli(['pub', 'plain.a', 'x', ...(flag === '--delay' ? [flag, '100'] : [flag]), '--server', n.server]);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('(MB_ERR_NOT_DURABLE)');
    }
    const r = await runCli(['history', 'hist.a', '--last', '2', '--server', n.server]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^hist\.a: epoch [0-9a-f]{16}, last offset 3$/);
    expect(lines.slice(1).map((l) => l.replace(/ {2}\S+Z {2}/, ' '))).toEqual(['2 two', '3 three']);
    const j = await runCli(['history', 'hist.a', '--json', '--server', n.server]);
    expect(j.code, j.err).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ topic: 'hist.a', lastOffset: 3, complete: true, events: [{ offset: 1, data: 'one' }, { offset: 2, data: 'two' }, { offset: 3, data: 'three' }] });
    const empty = await runCli(['history', 'hist.none', '--server', n.server]);
    expect(empty.code, empty.err).toBe(0);
    expect(empty.out).toMatch(/^hist\.none: epoch [0-9a-f]{16}, last offset 0\n$/);
    const plain = await runCli(['history', 'plain.a', '--server', n.server]);
    expect(plain.code).toBe(1);
    expect(plain.err).toMatch(/^meshbus: .*no durable rule with history covers "plain\.a".*\(MB_ERR_NOT_DURABLE\)/);
  } finally {
    await redis.cleanup();
  }
  // A node without Redis: the same typed refusal, not a wait for a history that never comes.
  const bare = await startNode();
  const r = await runCli(['history', 'hist.a', '--server', bare.server]);
  expect(r.code).toBe(1);
  expect(r.err).toContain('MB_ERR_NOT_DURABLE');
  const ack = await runCli(['pub', 'hist.a', 'x', '--ack', '--server', bare.server]);
  expect(ack.code).toBe(1);
  expect(ack.err).toMatch(/^meshbus: topic is not durable on this node: acked publish: durability is off on this node \(no redis configured\) \(MB_ERR_NOT_DURABLE\)/);
});

it('start refuses a --cluster-secret under 8 characters with exit 2, before binding any port', async () => {
  const port = await freePort();
  const cluster = await freePort();
  for (const [args, env] of [
    [['--cluster-secret', 'short'], {}],
    [[], { MESHBUS_CLUSTER_SECRET: '1234567' }],
  ] as const) {
    const p = track(spawnCli(['start', '--port', String(port), '--cluster-port', String(cluster), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'debug', ...args], { env }));
    expect(await p.exited).toBe(2);
    expect(p.err()).toMatch(/^meshbus: --cluster-secret .*at least 8 characters/);
    expect(p.err()).not.toContain('listening');
    expect(await portFree(port)).toBe(true);
  }
  // Eight characters are enough.
  const ok = track(spawnCli(['start', '--port', String(port), '--cluster-port', String(cluster), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--cluster-secret', '12345678']));
  await until(() => ok.err().includes('node listening'), 'the node to listen');
  ok.child.kill('SIGTERM');
  expect(await ok.exited).toBe(0);
});
