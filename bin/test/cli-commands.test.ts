import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { type CliProcess, runCli, spawnCli, until } from '@meshbus/testkit';
import { COMMANDS } from '../src/index.js';

/**
 * Issue #16, "The meshbus command": every command has --help, --version works,
 * exit codes are 0 ok / 1 runtime failure / 2 usage, and a client command
 * given a bad topic or flag exits (with 2) instead of hanging after printing
 * the error. Everything runs `node bin/meshbus.js` as a real process; a run
 * still going after its bound is reported as 'hung'.
 */

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('help and version', () => {
  it('--version prints the package version and exits 0', async () => {
    for (const flag of ['--version', '-V', 'version']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe(`meshbus ${VERSION}`);
    }
  });

  it('meshbus --help lists every command and the exit codes', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.out).toMatch(new RegExp(`^  ${c.spec.name} `, 'm'));
    expect(r.out).toContain('Exit codes: 0 ok, 1 runtime failure');
  });

  it('no command at all prints the usage and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Usage: meshbus <command>');
  });

  it.each(COMMANDS.map((c) => c.spec))('meshbus $name --help lists every option, each with a sentence', async (spec) => {
    // `start --help` was "Unknown option '--help'" before.
    for (const args of [[spec.name, '--help'], [spec.name, '-h'], ['help', spec.name]]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toContain(`Usage: meshbus ${spec.name}`);
      for (const o of spec.options) {
        const line = r.out.split('\n').findIndex((l) => l.includes(`--${o.name}`));
        expect(line, `--${o.name} in ${spec.name} --help`).toBeGreaterThanOrEqual(0);
        expect(r.out).toContain(o.help);
      }
    }
  });

  it('start --help names the cluster flags users look for', async () => {
    const r = await runCli(['start', '--help']);
    for (const f of ['--cluster-port', '--seeds', '--cluster-secret', '--workers', '--config']) expect(r.out).toContain(f);
  });
});

describe('usage errors exit 2 at once, before connecting', () => {
  let node: CliProcess;
  let server: string;
  beforeAll(async () => {
    const port = await freePort();
    server = `127.0.0.1:${port}`;
    node = spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']);
    await until(() => node.err().includes('node listening'), 'the node to listen');
  });
  afterAll(async () => {
    node.child.kill('SIGTERM');
    await node.exited;
  });

  // Each of these printed its error and then never exited (issue #16), or did the wrong thing silently.
  it.each([
    { args: ['pub', 'demo..x', 'hi'], says: 'empty token' },
    { args: ['pub', '', 'x'], says: 'topic is empty' },
    { args: ['pub', 'demo.>', 'x'], says: 'wildcard in publish topic' },
    { args: ['sub', 'a.>.b'], says: '">" must be the last token' },
    { args: ['req', 'a.*', 'x'], says: 'wildcard in publish topic' },
    { args: ['trace', 'a..b', 'x'], says: 'empty token' },
    // --header novalue was published as {"novalu":"novalue"}
    { args: ['pub', 'demo.x', 'hi', '--header', 'novalue'], says: '--header "novalue"' },
    { args: ['pub', 'demo.x', 'hi', '--header', '=v'], says: '--header "=v"' },
    // --count abc published nothing and exited 0
    { args: ['pub', 'demo.x', 'hi', '--count', 'abc'], says: '--count' },
    { args: ['pub', 'demo.x', 'hi', '--count', '0'], says: '--count' },
    { args: ['sub', 'demo.x', '--count', '-1'], says: '--count' },
    { args: ['req', 'demo.x', 'hi', '--timeout', 'soon'], says: '--timeout' },
    { args: ['trace', 'demo.x', 'hi', '--wait', '1.5s'], says: '--wait' },
    { args: ['pub', 'demo.x'], says: 'missing <data>' },
    { args: ['pub', 'demo.x', 'hi', 'extra'], says: 'unexpected argument "extra"' },
    { args: ['pub', 'demo.x', 'hi', '--bogus'], says: '--bogus' },
    { args: ['sub', 'demo.x', '--server', ','], says: '--server' },
  ])('meshbus $args.0 $args', async ({ args, says }) => {
    const r = await runCli(args.includes('--server') ? args : [...args, '--server', server]);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toContain(says);
    expect(r.out).toBe('');
  });

  it.each([
    { args: ['start', '--port', 'abc'], says: '--port' },
    { args: ['start', '--help-me'], says: '--help-me' },
    { args: ['start', '--mesh', 'ring'], says: '--mesh' },
    { args: ['start', '--region', 'e u'], says: '--region' },
    { args: ['start', '--region', 'eu', '--mesh', 'partial', '--gateways', 'us=127.0.0.1:1'], says: '--gateways join full meshes' },
    { args: ['start', '--region', 'eu', '--gateways', 'eu=127.0.0.1:1'], says: 'own region' },
    { args: ['start', '--region', 'eu', '--gateways', 'u s=127.0.0.1:1'], says: '--gateways' },
    { args: ['start', 'now'], says: 'unexpected argument "now"' },
    { args: ['dev', '--nodes', '0'], says: '--nodes' },
    { args: ['dev', '--cluster-base', '65535', '--nodes', '2'], says: '--cluster-base' },
    { args: ['dev', '--log-level', 'loud'], says: '--log-level' },
    { args: ['frobnicate'], says: 'unknown command "frobnicate"' },
  ])('meshbus $args', async ({ args, says }) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toContain(says);
  });

  it('runtime failures exit 1 and do not hang', async () => {
    const nobody = `127.0.0.1:${await freePort()}`;
    for (const args of [
      ['pub', 'demo.x', 'hi', '--server', nobody],
      ['sub', 'demo.x', '--server', nobody],
      ['req', 'nobody.serves', 'hi', '--server', server],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(/^meshbus: /);
    }
  });

  it('pub with headers and --count reaches sub --count, which exits 0', async () => {
    const sub = spawnCli(['sub', 'cli.>', '--count', '3', '--server', server]);
    await until(() => sub.err().includes('subscribed to cli.>'), 'the subscription');
    const r = await runCli(['pub', 'cli.x', 'hello', '--count', '3', '--header', 'k=v', '--header', 'empty=', '--server', server]);
    expect(r.code).toBe(0);
    expect(await sub.exited).toBe(0);
    // sub shows each event's topic (issue #16: it printed bare payloads).
    expect(sub.out()).toBe('[#1] cli.x: hello\n[#2] cli.x: hello\n[#3] cli.x: hello\n');
  });
});

it('a refused token and a node that dies under sub exit 1, not hang', async () => {
  const port = await freePort();
  const server = `127.0.0.1:${port}`;
  const node = spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--token', 'sekret']);
  try {
    await until(() => node.err().includes('node listening'), 'the node to listen');
    const refused = await runCli(['pub', 'demo.x', 'hi', '--server', server]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('MB_ERR_AUTH_FAILED');
    const sub = spawnCli(['sub', 'demo.>', '--server', server, '--token', 'sekret']);
    await until(() => sub.err().includes('subscribed to demo.>'), 'the subscription');
    node.child.kill('SIGKILL');
    const t = setTimeout(() => sub.child.kill('SIGKILL'), 15_000);
    expect(await sub.exited).toBe(1);
    clearTimeout(t);
    expect(sub.err()).toMatch(/^meshbus: .*MB_ERR_CONNECTION_CLOSED/m);
  } finally {
    if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    await node.exited;
  }
});
