import { afterAll, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { spawnCli, trackedProcesses, until } from '@meshbus/testkit';

/**
 * A misspelt MESHBUS_* variable given to `meshbus start` (a flag or a config
 * file key that does not exist is refused, exit 2; a variable cannot be: the
 * environment is shared). Found by a newcomer: MESHBUS_PROT=1 (and
 * MESHBUS_CLUSTER_SECRETS, MESHBUS_ADVERTIZE) were ignored without a word,
 * the node ran on the defaults (no cluster secret, the bind address
 * advertised). Real `meshbus start` processes.
 */

const { track, stop } = trackedProcesses();
afterAll(async () => {
  await stop();
});

function warnings(err: string): Array<Record<string, unknown>> {
  return err
    .split('\n')
    .filter((l) => l.includes('environment variable ignored'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

it('start warns about MESHBUS_* variables no setting reads, naming the one meant; not about real ones or the client commands\'', async () => {
  const port = await freePort();
  const env = {
    ...process.env,
    MESHBUS_CLUSTER_SECRETS: 'a-long-enough-secret',
    MESHBUS_NOTHING_LIKE_IT_AT_ALL: '1',
    MESHBUS_PORT: String(port),
    MESHBUS_SERVER: '127.0.0.1:1',
    MESHBUS_HTTP: 'http://127.0.0.1:1',
  };
  const p = track(spawnCli(['start', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn'], { env }));
  await until(() => warnings(p.err()).length >= 2 || p.child.exitCode !== null, 'the warnings', 10_000);
  const w = warnings(p.err());
  expect(w.map((x) => x.variable)).toEqual(['MESHBUS_CLUSTER_SECRETS', 'MESHBUS_NOTHING_LIKE_IT_AT_ALL']);
  expect(w[0]).toMatchObject({ level: 'warn', didYouMean: 'MESHBUS_CLUSTER_SECRET' });
  expect(w[1]!.didYouMean).toBeUndefined();
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});
