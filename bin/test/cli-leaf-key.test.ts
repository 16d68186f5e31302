import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, spawnCli, trackedProcesses, until } from '@meshbus/testkit';

/**
 * `meshbus leaf-key` and `start --leaf-key` / `--deny-leaf-keys` (cluster/README
 * "Leaf nodes", leaf keys) with real processes: a leaf started with a key of its
 * own instead of the cluster secret links to its hub and carries events; a hub
 * that revoked its label refuses it; bad usage exits 2 before any port opens.
 */
const { track, stop } = trackedProcesses();
afterAll(() => stop());
const SECRET = 'leaf-key-cli-secret';

async function hub(extra: string[] = []): Promise<{ server: string; cluster: number; http: string }> {
  const [port, http, cluster] = [await freePort(), await freePort(), await freePort()];
  track(spawnCli(['start', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--cluster-port', String(cluster), '--cluster-secret', SECRET, '--log-level', 'info', ...extra]));
  const url = `http://127.0.0.1:${http}`;
  await until(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 'the hub to be ready');
  return { server: `127.0.0.1:${port}`, cluster, http: url };
}

describe('meshbus leaf-key', () => {
  it('prints a key; a leaf started with it links to its hub and carries events both ways', async () => {
    const issued = await runCli(['leaf-key', 'paris-1'], 15_000, { MESHBUS_CLUSTER_SECRET: SECRET });
    expect(issued.code, issued.err).toBe(0);
    const key = issued.out.trim();
    expect(key).toMatch(/^mbleaf1\.paris-1\.[0-9a-f]{64}$/);
    const rules = join(mkdtempSync(join(tmpdir(), 'leaf-rules-')), 'rules.json');
    writeFileSync(rules, JSON.stringify({ 'paris-1': { publish: { allow: ['edge.>'] } } }));
    const h = await hub(['--leaf-permissions', rules]);
    const port = await freePort();
    const leaf = track(spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--mesh', 'leaf', '--seeds', `127.0.0.1:${h.cluster}`, '--log-level', 'info'], { env: { MESHBUS_LEAF_KEY: key } }));
    await until(() => (leaf.out() + leaf.err()).includes('peer link up'), 'the leaf linked to its hub');
    expect((leaf.out() + leaf.err())).not.toContain('no cluster secret configured');
    const sub = track(spawnCli(['sub', 'edge.>', '--count', '1', '--server', h.server]));
    await until(() => sub.err().includes('subscribed to edge.>'), 'the subscription at the hub');
    await until(async () => {
      await runCli(['pub', 'edge.x', 'from-the-leaf', '--server', `127.0.0.1:${port}`]);
      return sub.out().includes('from-the-leaf');
    }, 'the leaf\'s event at the hub');
    // Outside the label's publish rules (--leaf-permissions): dropped at the hub, while the next allowed one arrives.
    const other = track(spawnCli(['sub', 'other.>', '--server', h.server]));
    await until(() => other.err().includes('subscribed to other.>'), 'the second subscription');
    const sub2 = track(spawnCli(['sub', 'edge.after', '--count', '1', '--server', h.server]));
    await until(() => sub2.err().includes('subscribed to edge.after'), 'the third subscription');
    await until(async () => {
      await runCli(['pub', 'other.x', 'denied', '--server', `127.0.0.1:${port}`]);
      await runCli(['pub', 'edge.after', 'allowed', '--server', `127.0.0.1:${port}`]);
      return sub2.out().includes('allowed');
    }, 'the allowed event after the denied one');
    expect(other.out()).not.toContain('denied');
    const bad = await runCli(['start', '--port', String(await freePort()), '--http-port', 'off', '--ws-port', 'off', '--cluster-port', String(await freePort()), '--leaf-permissions', join(tmpdir(), 'no-such-rules.json')]);
    expect(bad.code, bad.err).toBe(2);
    expect(bad.err).toContain('--leaf-permissions');
  });

  it('a hub with the label in --deny-leaf-keys refuses the leaf (MB_ERR_AUTH_FAILED)', async () => {
    const key = (await runCli(['leaf-key', 'lost-1', '--cluster-secret', SECRET])).out.trim();
    const h = await hub(['--deny-leaf-keys', 'lost-1,other']);
    const leaf = track(spawnCli(['start', '--port', String(await freePort()), '--http-port', 'off', '--ws-port', 'off', '--mesh', 'leaf', '--seeds', `127.0.0.1:${h.cluster}`, '--leaf-key', key, '--log-level', 'info']));
    await until(() => (leaf.out() + leaf.err()).includes('MB_ERR_AUTH_FAILED'), 'the refusal');
    expect((leaf.out() + leaf.err())).toContain('revoked');
    expect((leaf.out() + leaf.err())).not.toContain('peer link up');
  });

  it('bad usage exits 2 before any port opens', async () => {
    expect((await runCli(['leaf-key', 'x'], 15_000, { MESHBUS_CLUSTER_SECRET: '' })).code).toBe(2);
    expect((await runCli(['leaf-key', 'no spaces', '--cluster-secret', SECRET])).code).toBe(2);
    const key = (await runCli(['leaf-key', 'a', '--cluster-secret', SECRET])).out.trim();
    const port = String(await freePort());
    const cases: string[][] = [
      ['start', '--port', port, '--leaf-key', key],
      ['start', '--port', port, '--mesh', 'leaf', '--seeds', '127.0.0.1:1', '--leaf-key', key, '--cluster-secret', SECRET],
      ['start', '--port', port, '--deny-leaf-keys', 'a b'],
    ];
    for (const args of cases) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
    }
    const bad = await runCli(['start', '--port', port, '--http-port', 'off', '--ws-port', 'off', '--mesh', 'leaf', '--seeds', '127.0.0.1:1', '--leaf-key', 'mbleaf1.a.zz']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('mbleaf1.<label>');
  });
});
