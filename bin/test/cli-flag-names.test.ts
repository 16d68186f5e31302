import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, until } from '@meshbus/testkit';

/**
 * Start-up errors that named an internal option where the operator set a
 * flag (newcomer review): the client token keys (core's jwt.<key>: "jwt.
 * ed25519PublicKey is not a PEM public key", "jwt.--jwks-url must be…") and
 * the node's name ("node name cannot be used in a cluster"). Each exits 2
 * naming the flag, the variable or the config file's key it came from.
 */

const dir = mkdtempSync(join(tmpdir(), 'meshbus-flag-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'not a key\n');
// A PEM public key, of the wrong type (X25519, cheap to make).
const x25519 = join(dir, 'x25519.pem');
writeFileSync(x25519, generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }));
const configFile = join(dir, 'meshbus.json');
writeFileSync(configFile, JSON.stringify({ jwksUrl: 'notaurl' }));
// A JSON array is an object to `typeof`: `[]` started a node on the default ports, `[{"port":1}]` said `unknown setting "0"`.
const arrayConfig = join(dir, 'array.json');
writeFileSync(arrayConfig, '[]');

const START = ['start', '--port', '0', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn'];
const BAD_NAME = 'bad\nname';

describe('start: a bad setting (client token key, node name, Redis URL, durable rule, ports) exits 2 naming the flag', () => {
  const cases: Array<[string, string[], Record<string, string>, string]> = [
    ['--jwt-public-key not PEM', ['--jwt-public-key', notPem], {}, 'meshbus: --jwt-public-key is not a PEM public key'],
    ['--jwt-public-key not Ed25519', ['--jwt-public-key', x25519], {}, 'meshbus: --jwt-public-key is not an Ed25519 key'],
    ['--jwks-url', ['--jwks-url', 'notaurl'], {}, 'meshbus: --jwks-url must be an http(s) URL, got notaurl'],
    ['MESHBUS_JWKS_URL', [], { MESHBUS_JWKS_URL: 'ftp://x' }, 'meshbus: MESHBUS_JWKS_URL must be an http(s) URL, got ftp://x'],
    ['the config file key jwksUrl', ['--config', configFile], {}, 'meshbus: jwksUrl must be an http(s) URL, got notaurl'],
    ['a config file holding a JSON array', ['--config', arrayConfig], {}, `meshbus: config file ${arrayConfig} must hold a JSON object`],
    ['--name', ['--cluster-port', '0', '--name', BAD_NAME], {}, 'meshbus: --name cannot be used in a cluster: name has control or unprintable characters'],
    ['MESHBUS_NAME', ['--cluster-port', '0'], { MESHBUS_NAME: BAD_NAME }, 'meshbus: MESHBUS_NAME cannot be used in a cluster'],
    // Each worker is a clustered node (its siblings are peers): it passes the 2 on.
    ['--name with --workers', ['--workers', '2', '--name', BAD_NAME], {}, '--name cannot be used in a cluster'],
    // Checked before a port opens (was: `node listening`, then "meshbus: Invalid URL", exit 1; `/abc` ran, its store in database 0).
    ['--redis with a port that is no number', ['--redis', 'redis://127.0.0.1:notaport'], {}, 'meshbus: --redis: not a URL'],
    ['--redis with a database that is no number', ['--redis', 'redis://127.0.0.1:6379/abc'], {}, 'meshbus: --redis: the path is the database number'],
    // Durable settings without --redis are checked as with it (they were skipped unread: a typo ran silently).
    ['--durable-max-event-bytes 0 without --redis', ['--durable-max-event-bytes', '0'], {}, 'meshbus: --durable-max-event-bytes must be a positive integer'],
    ['a --durable rule with a typo, without --redis', ['--durable', 'a.>|histroy=1'], {}, 'meshbus: --durable: unknown option "histroy=1"'],
    // Two listeners of one start on one port (was: "http port 8494 on 127.0.0.1 is already in use", exit 1, once the node served).
    ['--http-port and --ws-port on one port', ['--http-port', '48494', '--ws-port', '48494'], {}, 'meshbus: --http-port and --ws-port are both 48494'],
    ['--port and --cluster-port on one port', ['--port', '48495', '--cluster-port', '48495'], {}, 'meshbus: --port and --cluster-port are both 48495'],
  ];
  for (const [what, args, env, says] of cases) {
    it(what, async () => {
      const r = await runCli([...START, ...args], 15_000, env);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).not.toMatch(/jwt\.|ed25519PublicKey|node name/);
    });
  }
});

it('start --help says that --publish-rate 0 turns the limit off (other zeros exit 2)', async () => {
  const r = await runCli(['start', '--help']);
  expect(r.code).toBe(0);
  const line = r.out.split('\n').find((l) => l.includes('--publish-rate'));
  expect(line).toContain('0 (the default) turns the publish rate limit off');
});

it('start: durable settings without --redis are said at warn to do nothing (they were skipped without a word)', async () => {
  const p = spawnCli([...START, '--durable', 'orders.>|history=10']);
  try {
    await until(() => p.err().includes('durable settings given without --redis'), 'the warning', 15_000);
    expect(p.err()).toContain('"settings":["durable"]');
  } finally {
    p.child.kill('SIGKILL');
  }
});

it('start: a --jwt-secret shorter than 32 bytes is said at warn (RFC 7518 3.2; a 1-character secret was taken without a word)', async () => {
  const p = spawnCli([...START, '--jwt-secret', 'x']);
  try {
    await until(() => p.err().includes('--jwt-secret is shorter than 32 bytes'), 'the warning', 15_000);
  } finally {
    p.child.kill('SIGKILL');
  }
});
