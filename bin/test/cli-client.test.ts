import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { MESHBUS_BIN as BIN, runCli, spawnCli, trackedProcesses, until, type CliProcess, makePki } from '@meshbus/testkit';

/**
 * Issue #16, the client commands: sub shows topics (headers, JSON, raw),
 * reply serves requests, req/sub/reply take MESHBUS_SERVER, MESHBUS_TOKEN
 * and MESHBUS_TLS_CA, bench reports numbers, cluster / server list read the
 * HTTP views, and every bad argument exits 2. Real `meshbus start` nodes and
 * real `node bin/meshbus.js` processes throughout.
 */

const { track, stop: stopProcesses } = trackedProcesses();
afterAll(async () => {
  await stopProcesses();
});

/** Starts `meshbus start` with `args` and waits until /readyz answers 200 (or, with `--http-port` in `args`, until it logs that it listens). */
async function startNode(args: string[] = [], env?: NodeJS.ProcessEnv): Promise<{ server: string; http: string; p: CliProcess }> {
  const port = await freePort();
  const http = await freePort();
  const httpOff = args.includes('--http-port');
  const p = track(spawnCli(['start', '--port', String(port), ...(httpOff ? [] : ['--http-port', String(http)]), '--ws-port', 'off', '--log-level', 'info', ...args], { env }));
  if (httpOff) await until(() => p.err().includes('node listening'), 'the node to listen');
  else await until(async () => (await fetch(`http://127.0.0.1:${http}/readyz`).catch(() => undefined))?.status === 200, 'the node to be ready');
  return { server: `127.0.0.1:${port}`, http: `http://127.0.0.1:${http}`, p };
}

async function started(p: CliProcess, what: string): Promise<void> {
  await until(() => p.err().includes(what) || p.child.exitCode !== null, what);
  expect(p.child.exitCode, p.err()).toBeNull();
}

describe('against one node', () => {
  let server: string;
  let http: string;
  beforeAll(async () => {
    ({ server, http } = await startNode());
  });

  it('sub prints the topic of each event; --headers adds its headers', async () => {
    const sub = track(spawnCli(['sub', 'fmt.>', '--count', '2', '--headers', '--server', server]));
    await started(sub, 'subscribed to fmt.>');
    expect((await runCli(['pub', 'fmt.a', 'one', '--header', 'k=v', '--server', server])).code).toBe(0);
    expect((await runCli(['pub', 'fmt.b.c', 'two', '--server', server])).code).toBe(0);
    expect(await sub.exited).toBe(0);
    expect(sub.out()).toBe('[#1] fmt.a {"k":"v"}: one\n[#2] fmt.b.c {}: two\n');
  });

  it('sub, reply and req print what the network sent safely for a terminal: escape sequences written as \\u escapes (was: raw, so any publisher could rewrite the operator\'s screen, title or clipboard)', async () => {
    const evil = '\u001b]0;pwned\u0007\u001b[2J\rfake\u009b31m';
    const sub = track(spawnCli(['sub', 'esc.>', '--count', '1', '--server', server]));
    const reply = track(spawnCli(['reply', 'esc.svc', evil, '--count', '1', '--server', server]));
    await started(sub, 'subscribed to esc.>');
    await started(reply, 'serving requests on esc.svc');
    expect((await runCli(['pub', 'esc.a', evil, '--server', server])).code).toBe(0);
    expect(await sub.exited).toBe(0);
    const safe = '\\u001b]0;pwned\\u0007\\u001b[2J\\u000dfake\\u009b31m';
    expect(sub.out()).toBe(`[#1] esc.a: ${safe}\n`);
    const req = await runCli(['req', 'esc.svc', 'q', '--server', server]);
    expect(req.code).toBe(0);
    expect(req.out).toBe(`${safe}\n`);
    expect(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(sub.out() + req.out)).toBe(false);
  });

  it('sub --json prints one JSON object per line (base64 for a payload that is not UTF-8); --raw only payloads', async () => {
    const json = track(spawnCli(['sub', 'js.>', '--count', '2', '--json', '--server', server]));
    const raw = track(spawnCli(['sub', 'js.>', '--count', '2', '--raw', '--server', server]));
    await started(json, 'subscribed to js.>');
    await started(raw, 'subscribed to js.>');
    expect((await runCli(['pub', 'js.x', 'hello', '--header', 'a=b', '--server', server])).code).toBe(0);
    expect((await runCli(['pub', 'js.y', '{"n":1}', '--server', server])).code).toBe(0);
    expect(await json.exited).toBe(0);
    const lines = json.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([
      { n: 1, topic: 'js.x', data: 'hello', size: 5, headers: { a: 'b' } },
      { n: 2, topic: 'js.y', data: '{"n":1}', size: 7 },
    ]);
    expect(typeof lines[0]!.timestamp).toBe('number');
    expect(await raw.exited).toBe(0);
    expect(raw.out()).toBe('hello\n{"n":1}\n');
  });

  it('time flags take durations (req --timeout 300ms, 1s), as token --ttl does; milliseconds without a unit', async () => {
    // A subscriber that never answers: the request waits its whole --timeout, then exits 1.
    const silent = track(spawnCli(['sub', 'slow.svc', '--server', server]));
    await started(silent, 'subscribed to slow.svc');
    for (const timeout of ['300ms', '1s', '300']) {
      const t0 = Date.now();
      const r = await runCli(['req', 'slow.svc', 'q', '--timeout', timeout, '--server', server]);
      expect(r.code, `${timeout}: ${r.err}`).toBe(1);
      expect(r.err, timeout).toMatch(/timed out/);
      // Not the default 5,000 ms: the duration was read in its unit.
      expect(Date.now() - t0, timeout).toBeLessThan(4500);
    }
    silent.child.kill('SIGTERM');
  });

  it('reply answers with <data> or --echo; req --json prints the reply as JSON; --queue shares requests', async () => {
    const fixed = track(spawnCli(['reply', 'svc.time', 'noon', '--count', '1', '--header', 'x=1', '--server', server]));
    await started(fixed, 'serving requests on svc.time');
    const r1 = await runCli(['req', 'svc.time', 'what time?', '--json', '--server', server]);
    expect(r1.code, r1.err).toBe(0);
    expect(JSON.parse(r1.out)).toMatchObject({ data: 'noon', headers: { x: '1' } });
    expect(await fixed.exited).toBe(0);
    expect(fixed.out()).toMatch(/^\[#1\] svc\.time: what time\?\n$/);

    const a = track(spawnCli(['reply', 'echo.>', '--echo', '--queue', 'g', '--count', '1', '--json', '--server', server]));
    const b = track(spawnCli(['reply', 'echo.>', '--echo', '--queue', 'g', '--count', '1', '--json', '--server', server]));
    await started(a, 'serving requests');
    await started(b, 'serving requests');
    const answers = [];
    for (const word of ['first', 'second']) {
      const r = await runCli(['req', `echo.${word}`, word, '--header', 'h=v', '--server', server]);
      expect(r.code, r.err).toBe(0);
      answers.push(r.out);
    }
    expect(answers).toEqual(['first\n', 'second\n']);
    // One request each: the queue group shared them, and each exited after its --count.
    expect([await a.exited, await b.exited]).toEqual([0, 0]);
    const served = [a.out(), b.out()].map((o) => (JSON.parse(o) as { data: string; headers: unknown }));
    expect(served.map((s) => s.data).sort()).toEqual(['first', 'second']);
    expect(served[0]!.headers).toEqual({ h: 'v' });
  });

  it('client commands take MESHBUS_SERVER when --server is not given', async () => {
    const r = await runCli(['pub', 'env.x', 'hi'], 15_000, { MESHBUS_SERVER: server });
    expect(r.code, r.err).toBe(0);
    const bad = await runCli(['pub', 'env.x', 'hi'], 15_000, { MESHBUS_SERVER: `127.0.0.1:${await freePort()}` });
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('cannot reach a meshbus node');
    const json = await runCli(['pub', 'env.x', 'hi', '--count', '2', '--json'], 15_000, { MESHBUS_SERVER: server });
    expect(JSON.parse(json.out)).toEqual({ topic: 'env.x', published: 2, bytes: 2 });
    // The flag wins over the variable.
    expect((await runCli(['pub', 'env.x', 'hi', '--server', server], 15_000, { MESHBUS_SERVER: 'nowhere:1' })).code).toBe(0);
  });

  it('bench completes with tiny counts and reports rates and latency percentiles', async () => {
    const r = await runCli(['bench', 'bench.t', '--pub', '2', '--sub', '2', '--msgs', '200', '--size', '16', '--server', server]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/2 publisher\(s\), 2 subscriber\(s\), 200 msgs of 16 B/);
    expect(r.out).toMatch(/pub\s+[\d,]+ msgs\/s\s+[\d.]+ MB\/s/);
    expect(r.out).toMatch(/sub\s+[\d,]+ msgs\/s .*\(400 of 400 deliveries/);
    expect(r.out).toMatch(/latency ms\s+p50 [\d.]+\s+p90 [\d.]+\s+p99 [\d.]+\s+max [\d.]+/);
    const j = await runCli(['bench', 'bench.j', '--pub', '1', '--sub', '1', '--msgs', '50', '--size', '8', '--json', '--server', server]);
    expect(j.code, j.err).toBe(0);
    const res = JSON.parse(j.out) as { pub: { msgs: number; msgsPerSec: number }; sub: { received: number; expected: number }; latency: { samples: number; p50: number; p99: number } };
    expect(res.pub.msgs).toBe(50);
    expect(res.pub.msgsPerSec).toBeGreaterThan(0);
    expect(res.sub).toMatchObject({ received: 50, expected: 50 });
    expect(res.latency.samples).toBe(50);
    expect(res.latency.p99).toBeGreaterThanOrEqual(res.latency.p50);
    // Publishers only (nothing to wait for), and a size too small to carry a timestamp.
    const pubOnly = await runCli(['bench', 'bench.p', '--pub', '1', '--sub', '0', '--msgs', '10', '--size', '0', '--server', server]);
    expect(pubOnly.code, pubOnly.err).toBe(0);
    expect(pubOnly.out).toMatch(/pub\s+[\d,]+ msgs\/s/);
  });

  it('bench shows a progress line on a terminal (run under script(1) for a TTY), none when stderr is a pipe', async (ctx) => {
    if (spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0) return ctx.skip('script(1) is not installed');
    const cmd = [process.execPath, BIN, 'bench', 'bench.tty', '--msgs', '300', '--size', '8', '--server', server].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toContain('\rpublished 300/300  received 300/300');
    expect(r.stdout).toMatch(/sub\s+[\d,]+ msgs\/s/);
    const piped = await runCli(['bench', 'bench.tty', '--msgs', '300', '--server', server]);
    expect(piped.code).toBe(0);
    expect(piped.err).toBe('');
  });

  it('cluster and server list print the node and the mesh table from the HTTP views; --json gives both views', async () => {
    for (const args of [['cluster'], ['server', 'list']]) {
      const r = await runCli([...args, '--http', http]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/^node [0-9a-f]{16}  meshbus \d+\.\d+\.\d+  127\.0\.0\.1:\d+  ready/);
      expect(r.out).toMatch(/ID\s+NAME\s+ADDRESS\s+STATE\s+RTT MS/);
      expect(r.out).toMatch(/[0-9a-f]{16} \*\s+-\s+127\.0\.0\.1:\d+\s+up/);
    }
    const j = await runCli(['cluster', '--json'], 15_000, { MESHBUS_HTTP: http });
    expect(j.code, j.err).toBe(0);
    const v = JSON.parse(j.out) as { node: { id: string; ready: boolean }; cluster: { self: string; nodes: unknown[] } };
    expect(v.node.ready).toBe(true);
    expect(v.cluster.self).toBe(v.node.id);
    expect(v.cluster.nodes).toHaveLength(1);
    const down = await runCli(['cluster', '--http', `http://127.0.0.1:${await freePort()}`]);
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot reach the HTTP API');
  });

  it.each([
    { args: ['reply', 'svc.x'], says: 'missing <data>' },
    { args: ['reply', 'svc.x', 'data', '--echo'], says: 'not both' },
    { args: ['reply', 'svc.x', '--echo', '--header', 'a=b'], says: '--header' },
    { args: ['reply', 'a.>.b', 'x'], says: '">" must be the last token' },
    { args: ['reply', 'svc.x', 'x', '--count', 'many'], says: '--count' },
    { args: ['sub', 'x', '--json', '--raw'], says: '--json and --raw' },
    { args: ['sub', 'x', '--queue', 'a b'], says: '--queue' },
    { args: ['sub', 'x', '--reconnects', '-1'], says: '--reconnects' },
    { args: ['req', 'x', 'y', '--header', 'nov'], says: '--header "nov"' },
    { args: ['pub', 'x', 'y', '--delay', 'soon'], says: '--delay' },
    { args: ['req', 'x', 'y', '--timeout', '5x'], says: '--timeout must be a whole number of milliseconds of at least 1, or one with ms, s, m, h or d' },
    { args: ['req', 'x', 'y', '--timeout', '0s'], says: '--timeout' },
    { args: ['trace', 'x', 'y', '--wait', '1.5s'], says: '--wait' },
    { args: ['pub', 'x', 'y', '--ack=yes'], says: '--ack' },
    { args: ['history'], says: 'missing <topic>' },
    { args: ['history', 'a.*'], says: 'wildcard in publish topic' },
    { args: ['history', 'a', '--last', '10001'], says: '--last' },
    { args: ['bench', 'b', '--pub', '0', '--sub', '0'], says: 'nothing to measure' },
    { args: ['bench', 'b', '--size', '2MB'], says: '--size' },
    { args: ['bench', 'b', '--msgs', '0'], says: '--msgs' },
    { args: ['bench', 'b', '--pub', '1001'], says: '--pub' },
    { args: ['bench'], says: 'missing <topic>' },
    { args: ['cluster', 'extra'], says: 'unexpected argument "extra"' },
    { args: ['cluster', '--http', 'ftp://x'], says: '--http' },
    { args: ['server'], says: 'missing sub-command' },
    { args: ['server', 'kill'], says: 'unknown sub-command "kill"' },
    { args: ['pub', 'x', 'y', '--tls-ca', '/nonexistent/ca.pem'], says: '--tls-ca "/nonexistent/ca.pem"' },
    { args: ['pub', 'x', 'y', '--server', 'foo://x:1'], says: 'unsupported scheme "foo"' },
    { args: ['sub', 'x', '--server', '127.0.0.1:99999'], says: '--server "127.0.0.1:99999": invalid port' },
    { args: ['bench', 'b', '--server', 'host:notaport'], says: '--server "host:notaport"' },
  ])('meshbus $args exits 2: $says', async ({ args, says }) => {
    const r = await runCli(args.includes('--server') || args[0] === 'cluster' || args[0] === 'server' ? args : [...args, '--server', server]);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toContain(says);
    expect(r.out).toBe('');
  });
});

it('cluster prints the views of a node (which may be anyone\'s) safely for a terminal', async () => {
  const { createServer } = await import('node:http');
  const evil = 'x\u001b]52;c;cHduZWQ=\u0007\u001b[2J';
  const views: Record<string, unknown> = {
    '/v1/node': { id: 'ab12cd34ef56ab78', name: evil, version: '0.1.0', address: evil, ready: true, draining: false, uptimeSeconds: 1, connections: 0, subscriptions: 0 },
    '/v1/cluster': { clustered: true, ready: true, peers: [], nodes: [{ id: 'ab12cd34ef56ab78', name: evil, address: evil, state: 'up', self: true }], links: [] },
  };
  const fake = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(views[req.url ?? ''] ?? {}));
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  try {
    const r = await runCli(['cluster', '--http', `http://127.0.0.1:${(fake.address() as { port: number }).port}`]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('x\\u001b]52;c;cHduZWQ=\\u0007\\u001b[2J');
    expect(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(r.out)).toBe(false);
  } finally {
    await new Promise<void>((r) => fake.close(() => r()));
  }
});

it('client commands take the token and the TLS CA from the environment (MESHBUS_TOKEN, MESHBUS_TLS_CA) or flags', async () => {
  const pki = makePki();
  const { server } = await startNode(['--tls-cert', pki.files.cert, '--tls-key', pki.files.key, '--token', 'sekret', '--http-port', 'off']);
  const env = { MESHBUS_SERVER: server, MESHBUS_TOKEN: 'sekret', MESHBUS_TLS_CA: pki.files.ca };
  const sub = track(spawnCli(['sub', 'tls.>', '--count', '1'], { env }));
  await started(sub, 'subscribed to tls.>');
  expect(sub.err()).toContain(`tls://${server}`);
  const pub = await runCli(['pub', 'tls.x', 'secure', '--server', server, '--token', 'sekret', '--tls-ca', pki.files.ca]);
  expect(pub.code, pub.err).toBe(0);
  expect(await sub.exited).toBe(0);
  expect(sub.out()).toBe('[#1] tls.x: secure\n');
  // Without the CA the certificate is not trusted; without the token the node refuses.
  const noCa = await runCli(['pub', 'tls.x', 'x', '--server', `tls://${server}`], 15_000, { MESHBUS_TOKEN: 'sekret' });
  expect(noCa.code).toBe(1);
  const noToken = await runCli(['pub', 'tls.x', 'x'], 15_000, { MESHBUS_SERVER: server, MESHBUS_TLS_CA: pki.files.ca });
  expect(noToken.code).toBe(1);
  expect(noToken.err).toContain('MB_ERR_AUTH_FAILED');
});

it('pub and sub on the wrong side of TLS say which scheme to use (they said "closed by peer" / "wrong version number"), exit 1; the node logs it', async () => {
  const pki = makePki();
  const secure = await startNode(['--tls-cert', pki.files.cert, '--tls-key', pki.files.key, '--http-port', 'off']);
  const plain = await startNode(['--http-port', 'off']);
  const toSecure = await runCli(['pub', 'x', 'y', '--server', `tcp://${secure.server}`]);
  expect(toSecure.code, toSecure.err).toBe(1);
  expect(toSecure.err).toContain('this port speaks TLS: connect with tls://');
  await until(() => secure.p.err().includes('plain connection on the TLS client port refused'), 'the TLS node to log the plain client');
  const toPlain = await runCli(['sub', 'x', '--server', `tls://${plain.server}`, '--tls-ca', pki.files.ca]);
  expect(toPlain.code, toPlain.err).toBe(1);
  expect(toPlain.err).toContain(`the server does not speak TLS on this port: connect with tcp://${plain.server}`);
  await until(() => plain.p.err().includes('TLS handshake on the plain client port refused'), 'the plain node to log the TLS client');
});
