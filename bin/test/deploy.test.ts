import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { freePort } from '@meshbus/core';
import { START_SETTINGS } from '../src/config.js';
import { MESHBUS_BIN as BIN, until } from '@meshbus/testkit';

/**
 * Issue #16, deployment: the Dockerfile, the Kubernetes manifests and the
 * systemd unit under bin/deploy. There is no Docker daemon and no Kubernetes
 * cluster on the machines that run these tests, so the image is not built
 * and the manifests are not applied: they are parsed and checked against
 * each other, and what they run is run for real — a `meshbus start` with the
 * StatefulSet's environment answers its probes (paths and ports from the
 * manifest) with 200 and drains on SIGTERM with exit 0 within the grace
 * period; the Dockerfile's and the unit's commands likewise.
 * `kubectl kustomize` and `systemd-analyze verify` run when installed.
 */

const DEPLOY = fileURLToPath(new URL('../deploy/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The node's default drain deadline (core options, drainTimeout). */
const DRAIN_MS = 5000;

type Obj = Record<string, unknown>;
interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Obj;
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  startupProbe: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  lifecycle: { preStop: { exec: { command: string[] } } };
  securityContext: Obj;
}

function manifests(): K8sObject[] {
  const dir = join(DEPLOY, 'k8s');
  const out: K8sObject[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      expect(doc.errors, f).toEqual([]);
      out.push(doc.toJS() as K8sObject);
    }
  }
  return out;
}

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!;
}

const k8s = manifests();
const sts = one(k8s, 'StatefulSet');
const podSpec = (sts.spec.template as { spec: Obj }).spec;
const podLabels = (sts.spec.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
const container = (podSpec.containers as Container[])[0]!;
const envValue = (name: string): string | undefined => container.env.find((e) => e.name === name)?.value;
const portNumber = (p: string | number): number => (typeof p === 'number' ? p : container.ports.find((x) => x.name === p)!.containerPort);

const running: { kill: () => void }[] = [];
afterEach(() => {
  for (const r of running.splice(0)) r.kill();
});

/** Spawns a command line (argv) with `env`, output collected; killed after the test if still running. */
function run(argv: string[], env: NodeJS.ProcessEnv, cwd = ROOT) {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.once('exit', (c, s) => r(c ?? s ?? 'unknown')));
  running.push({ kill: () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL') });
  return { child, err: () => err, exited };
}

async function status(url: string): Promise<number | undefined> {
  return (await fetch(url).catch(() => undefined))?.status;
}

describe('Kubernetes manifests (bin/deploy/k8s)', () => {
  it('a StatefulSet behind a headless Service that publishes not-ready addresses, a client Service and a PodDisruptionBudget, all selecting the pods', () => {
    const headless = one(k8s, 'Service', sts.spec.serviceName as string);
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    const services = k8s.filter((o) => o.kind === 'Service');
    expect(services.length).toBeGreaterThanOrEqual(2);
    for (const s of services) {
      expect(s.spec.selector, s.metadata.name).toEqual(expect.objectContaining({}));
      for (const [k, v] of Object.entries(s.spec.selector as Record<string, string>)) expect(podLabels[k], `${s.metadata.name} selects the pods`).toBe(v);
      for (const p of s.spec.ports as { targetPort: string | number }[]) expect(() => portNumber(p.targetPort)).not.toThrow();
    }
    expect((headless.spec.ports as { targetPort: string }[]).map((p) => p.targetPort)).toContain('cluster');
    const pdb = one(k8s, 'PodDisruptionBudget');
    for (const [k, v] of Object.entries((pdb.spec.selector as { matchLabels: Record<string, string> }).matchLabels)) expect(podLabels[k]).toBe(v);
    expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
    expect((sts.spec.selector as { matchLabels: Record<string, string> }).matchLabels).toEqual(expect.objectContaining(podLabels));
  });

  it('probes on /healthz and /readyz at the HTTP port the node is configured with; the other ports match the node settings', () => {
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.startupProbe.httpGet.path).toBe('/healthz');
    for (const p of [container.readinessProbe, container.livenessProbe, container.startupProbe]) expect(portNumber(p.httpGet.port)).toBe(Number(envValue('MESHBUS_HTTP_PORT')));
    expect(portNumber('client')).toBe(Number(envValue('MESHBUS_PORT')));
    expect(portNumber('cluster')).toBe(Number(envValue('MESHBUS_CLUSTER_PORT')));
    expect(portNumber('ws')).toBe(Number(envValue('MESHBUS_WS_PORT')));
    // Every MESHBUS_* variable is a setting of `meshbus start` (a typo would be ignored silently).
    const known = new Set(Object.keys(START_SETTINGS).map((k) => 'MESHBUS_' + k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()));
    for (const e of container.env.filter((x) => x.name.startsWith('MESHBUS_'))) expect(known.has(e.name), e.name).toBe(true);
    // Secrets come from a Secret, not from the manifest.
    for (const name of ['MESHBUS_CLUSTER_SECRET', 'MESHBUS_ADMIN_TOKEN']) expect(container.env.find((e) => e.name === name)?.valueFrom?.secretKeyRef, name).toBeDefined();
  });

  it('the grace period covers preStop and the drain; the pod runs unprivileged', () => {
    const cmd = container.lifecycle.preStop.exec.command;
    expect(cmd[0]).toBe('sleep');
    const preStopS = Number(cmd[1]);
    expect(podSpec.terminationGracePeriodSeconds as number).toBeGreaterThanOrEqual(preStopS + DRAIN_MS / 1000 + 5);
    expect((podSpec.securityContext as Obj).runAsNonRoot).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
  });

  it('kubectl kustomize renders the kustomization (when kubectl is installed)', (ctx) => {
    if (spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0) return ctx.skip('kubectl is not installed');
    const r = spawnSync('kubectl', ['kustomize', join(DEPLOY, 'k8s')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as K8sObject).kind).sort();
    expect(kinds).toEqual(['PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
  });

  it('a node started with the container\'s environment answers every probe with 200, and drains on SIGTERM with exit 0 within the grace period', async () => {
    // The container's variables, with $(VAR) references expanded as the kubelet does. Changed
    // for this machine: loopback instead of 0.0.0.0, free ports instead of the fixed ones,
    // no seeds / advertised name (cluster DNS), test values for the Secret's keys.
    const env: Record<string, string> = { POD_NAME: 'meshbus-0', POD_NAMESPACE: 'default' };
    const secret: Record<string, string> = { 'cluster-secret': 'test-cluster-secret', 'admin-token': 'test-admin-token' };
    for (const e of container.env) {
      if (e.valueFrom?.fieldRef) continue;
      env[e.name] = e.valueFrom?.secretKeyRef ? secret[e.valueFrom.secretKeyRef.key]! : e.value!.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v] ?? '');
    }
    delete env.MESHBUS_SEEDS;
    delete env.MESHBUS_ADVERTISE;
    env.MESHBUS_HOST = env.MESHBUS_CLUSTER_HOST = '127.0.0.1';
    const ports: Record<string, number> = {};
    for (const p of container.ports) ports[p.name] = await freePort();
    env.MESHBUS_PORT = String(ports.client);
    env.MESHBUS_CLUSTER_PORT = String(ports.cluster);
    env.MESHBUS_HTTP_PORT = String(ports.http);
    env.MESHBUS_WS_PORT = String(ports.ws);
    const probePort = (p: Probe): number => ports[p.httpGet.port as string]!;

    const node = run([process.execPath, BIN, ...container.args], { ...process.env, ...env });
    const startup = container.startupProbe;
    await until(async () => (await status(`http://127.0.0.1:${probePort(startup)}${startup.httpGet.path}`)) === 200, 'the startup probe');
    for (const p of [container.livenessProbe, container.readinessProbe]) {
      await until(async () => (await status(`http://127.0.0.1:${probePort(p)}${p.httpGet.path}`)) === 200, `${p.httpGet.path} on the ${String(p.httpGet.port)} port`);
    }
    // The admin views need the token from the Secret (the API listens beyond loopback in the pod).
    expect(await status(`http://127.0.0.1:${ports.http}/v1/node`)).toBe(401);
    expect(node.err()).toContain('"name":"meshbus-0"');
    const t0 = Date.now();
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(((podSpec.terminationGracePeriodSeconds as number) - Number(container.lifecycle.preStop.exec.command[1])) * 1000);
  });
});

describe('Dockerfile (bin/deploy/Dockerfile)', () => {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = text.split(/^FROM /m).slice(1);
  const final = stages.at(-1)!;
  /** The arguments of each `name` instruction of a stage, continuation lines joined. */
  const instr = (name: string, src = final): string[] =>
    src
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.startsWith(name + ' '))
      .map((l) => l.slice(name.length + 1).trim());

  it('is multi-stage; the final stage runs as a non-root user, with tini as PID 1 running the script in exec form', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.startsWith('FROM ')).length).toBe(stages.length);
    const user = instr('USER');
    expect(user).toHaveLength(1);
    expect(['root', '0']).not.toContain(user[0]);
    const entry = JSON.parse(instr('ENTRYPOINT')[0]!) as string[];
    expect(entry.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(entry.slice(2)).toEqual(['node', 'bin/meshbus.js']);
    expect(JSON.parse(instr('CMD')[0]!)).toEqual(['start']);
    expect(instr('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(text).not.toMatch(/npx meshbus/);
  });

  it('exposes the default ports of meshbus start', () => {
    const exposed = instr('EXPOSE').join(' ').split(/\s+/).map(Number);
    const d = (k: 'port' | 'httpPort' | 'wsPort'): number => START_SETTINGS[k].default as number;
    expect(exposed).toEqual(expect.arrayContaining([d('port'), d('httpPort'), d('wsPort'), 4481]));
  });

  it('its command, with its environment, starts a node whose HEALTHCHECK passes, and drains on SIGTERM with exit 0', async () => {
    // Docker cannot run here: the command and the health check are run directly (tini left out).
    const env: Record<string, string> = {};
    for (const l of instr('ENV').join(' ').split(/\s+/).filter(Boolean)) {
      const [k, v] = l.split('=');
      env[k!] = v!;
    }
    expect(env.MESHBUS_HOST).toBe('0.0.0.0');
    const http = await freePort();
    Object.assign(env, { MESHBUS_HOST: '127.0.0.1', MESHBUS_CLUSTER_HOST: '127.0.0.1', MESHBUS_PORT: String(await freePort()), MESHBUS_HTTP_PORT: String(http), MESHBUS_WS_PORT: String(await freePort()) });
    const entry = (JSON.parse(instr('ENTRYPOINT')[0]!) as string[]).slice(2);
    const node = run([process.execPath, ...entry.slice(1), ...(JSON.parse(instr('CMD')[0]!) as string[])], { ...process.env, ...env });
    await until(async () => (await status(`http://127.0.0.1:${http}/healthz`)) === 200, 'the node');
    const hc = JSON.parse(instr('HEALTHCHECK', final).join(' ').replace(/^.*CMD /, '')) as string[];
    const check = spawnSync(process.execPath, hc.slice(1), { env: { ...process.env, ...env }, timeout: 10_000 });
    expect(check.status).toBe(0);
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
  });
});

describe('systemd unit (bin/deploy/systemd/meshbus.service)', () => {
  const unit = readFileSync(join(DEPLOY, 'systemd', 'meshbus.service'), 'utf8');
  const key = (k: string): string | undefined => unit.split('\n').find((l) => l.startsWith(k + '='))?.slice(k.length + 1);

  it('runs the script (not npx) with SIGTERM and a stop timeout that covers the drain; exit 2 is not restarted', () => {
    expect(key('ExecStart')).toMatch(/^\/usr\/bin\/node \/opt\/meshbus\/bin\/meshbus\.js start /);
    expect(key('KillSignal')).toBe('SIGTERM');
    expect(Number(key('TimeoutStopSec'))).toBeGreaterThanOrEqual(DRAIN_MS / 1000 + 5);
    expect(key('RestartPreventExitStatus')).toBe('2');
    expect(key('User')).not.toBe('root');
  });

  it('systemd-analyze verify accepts it (when installed)', (ctx) => {
    if (spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status !== 0) return ctx.skip('systemd-analyze is not installed');
    const r = spawnSync('systemd-analyze', ['verify', join(DEPLOY, 'systemd', 'meshbus.service')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
  });

  it('its ExecStart (with this checkout as /opt/meshbus and a config file) drains on SIGTERM with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshbus-unit-'));
    const http = await freePort();
    const config = join(dir, 'meshbus.json');
    writeFileSync(config, JSON.stringify({ port: await freePort(), httpPort: http, wsPort: 'off', logLevel: 'info' }));
    const argv = key('ExecStart')!.replace('/opt/meshbus/', ROOT).replace('/etc/meshbus/meshbus.json', config).split(' ');
    argv[0] = process.execPath;
    const node = run(argv, { ...process.env });
    await until(async () => (await status(`http://127.0.0.1:${http}/readyz`)) === 200, 'the node');
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
  });
});
