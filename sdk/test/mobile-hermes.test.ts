/**
 * The mobile SDK on a real React Native engine: the `hermes` VM of the
 * hermes-engine-cli devDependency (Hermes 0.12: no native classes, Promise
 * only with -Xes6-promise), running the mobile bundle after the transform
 * Metro applies (@react-native/babel-preset, see metro-transform.ts).
 *
 * The hermes CLI has no sockets, so the session is replayed: the same
 * transformed bundle and app scenario (hermes/scenario.js) first run in a Node
 * `vm` against a real node over a real WebSocket, with every frame recorded;
 * then in hermes against ReplayWebSocket (hermes/harness.js), which hands the
 * app the recorded server messages as the app reaches the point where each
 * arrived. Both runs draw their randomness from one seed (hermes/prng.js), so
 * the app makes the same choices (reply-topic tokens). The test checks that
 * the app saw the same things in both engines and sent the same frames.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WsGateway } from '@meshbus/core/ws';
import { decodeFrames } from '@meshbus/proto';
import { MsgpackCodec, connect as nodeConnect, type Msg } from '../src/index.js';
import { bundle, SDK_ROOT } from './bundles.js';
import { Fixture, url } from '@meshbus/testkit';
import { hermesBinary, metroTransform } from './metro-transform.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

const SEED = 0x5eed2026;
/**
 * -Xes6-promise: older Hermes builds have Promise only behind it (the 0.12 CLI has it on by
 * default; passing it keeps the run the same on both); -Xmicrotask-queue: promise jobs run as
 * microtasks between tasks, as in an app, not as timer tasks.
 */
const HERMES_FLAGS = ['-Xes6-promise', '-Xmicrotask-queue'];

const hermesFile = (name: string): string => readFileSync(join(SDK_ROOT, 'test', 'hermes', name), 'utf8');

interface ServerEvent {
  after: number;
  hex?: string;
  close?: number;
}

/** A `ws` WebSocket that records what goes each way, by connection. */
function recordingWebSocket(connections: Array<{ server: ServerEvent[] }>, frames: Array<{ conn: number; hex: string }>) {
  return class RecordingWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    onclose: ((ev: { code?: number; reason?: string }) => void) | null = null;
    private readonly ws: WebSocket;
    private readonly conn = { server: [] as ServerEvent[], sent: 0, closing: false };
    private readonly index: number;

    constructor(address: string) {
      this.index = connections.push(this.conn) - 1;
      this.ws = new WebSocket(address);
      this.ws.binaryType = 'arraybuffer';
      this.ws.onopen = (ev) => this.onopen?.(ev);
      this.ws.onerror = (ev) => this.onerror?.(ev);
      this.ws.onmessage = (ev) => {
        this.conn.server.push({ after: this.conn.sent, hex: Buffer.from(ev.data as ArrayBuffer).toString('hex') });
        this.onmessage?.({ data: ev.data });
      };
      this.ws.onclose = (ev) => {
        if (!this.conn.closing) this.conn.server.push({ after: this.conn.sent, close: ev.code });
        this.onclose?.({ code: ev.code, reason: ev.reason });
      };
    }
    get binaryType(): string {
      return this.ws.binaryType;
    }
    set binaryType(v: string) {
      this.ws.binaryType = v as 'arraybuffer';
    }
    get readyState(): number {
      return this.ws.readyState;
    }
    get bufferedAmount(): number {
      return this.ws.bufferedAmount;
    }
    send(data: Uint8Array): void {
      const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      for (let pos = 0; pos + 4 <= b.length; ) {
        const end = pos + 4 + b.readUInt32BE(pos);
        frames.push({ conn: this.index, hex: b.subarray(pos, end).toString('hex') });
        this.conn.sent++;
        pos = end;
      }
      this.ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.conn.closing = true;
      this.ws.close(code, reason);
    }
  };
}

/** The fields of a client frame that say what the app did (not when: timestamps and the CRC over them differ). */
function meaning(hex: string) {
  const [f] = decodeFrames(Buffer.from(hex, 'hex'));
  return { type: f!.typeName, topic: f!.topic, correlation: f!.correlation, sid: f!.sid, ack: f!.ackRequested, ext: f!.ext ?? null, payload: Buffer.from(f!.payload).toString('hex') };
}

describe('mobile SDK in hermes (hermes-engine-cli), transformed as Metro does', () => {
  it('replays a real node session: same events, replies, errors and frames as in Node', async (ctx) => {
    const hermes = hermesBinary();
    if ('missing' in hermes) {
      console.log(`SKIPPED hermes test: ${hermes.missing}`);
      ctx.skip(hermes.missing);
      return;
    }
    // The premise: this engine has no native classes, so the transform is what makes the SDK run.
    const probe = (code: string, flags: string[] = []) => {
      const dir = mkdtempSync(join(tmpdir(), 'meshbus-hermes-probe-'));
      try {
        writeFileSync(join(dir, 'p.js'), code);
        const r = spawnSync(hermes.path, [...flags, join(dir, 'p.js')], { encoding: 'utf8', timeout: 20_000 });
        return { out: String(r.stdout), status: r.status };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const noClasses = probe('class A {}; print("classes");');
    expect(noClasses.out).toBe('');
    expect(noClasses.status).not.toBe(0);
    expect(probe('print(typeof Promise);', HERMES_FLAGS).out).toBe('function\n');

    const source = bundle('meshbus.mobile.js');
    const code = {
      prng: metroTransform(hermesFile('prng.js'), 'prng.js'),
      bundle: metroTransform(source, 'meshbus.mobile.js'),
      scenario: metroTransform(hermesFile('scenario.js'), 'scenario.js'),
      harness: metroTransform(hermesFile('harness.js'), 'harness.js'),
    };
    expect(code.bundle).not.toMatch(/\bclass\s+[A-Za-z_$][\w$]*\s*(extends\b[^{]*)?\{/);
    expect(code.scenario).not.toMatch(/\basync\s+function\b/);

    // ---- 1. the session against a real node, in Node's vm, recorded ----
    const node = await fx.node({ pingInterval: 60_000, token: 'app-token' });
    const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    fx.closers.push(() => gw.close());
    const wsUrl = `ws://127.0.0.1:${gw.port}`;
    const server = fx.track(await nodeConnect(url(node), { token: 'app-token' }));
    const fromApp: Array<{ topic: string; value: unknown; headers?: Record<string, string> }> = [];
    server.subscribe('phone.>', {
      callback: (m: Msg) => fromApp.push({ topic: m.topic, value: m.topic === 'phone.msgpack' ? MsgpackCodec.decode(m.data) : m.string(), ...(m.headers ? { headers: m.headers } : {}) }),
    });
    server.subscribe('svc.echo', { callback: (m: Msg) => void m.respond(`echo:${m.string()}`) });
    await server.flush();

    const connections: Array<{ server: ServerEvent[] }> = [];
    const nodeFrames: Array<{ conn: number; hex: string }> = [];
    const steps: Record<string, () => Promise<void>> = {
      publish: async () => {
        server.publish('app.a', 'one', { headers: { k: 'v' } });
        server.publish('app.b', 'ünïcødé 🚀');
        server.publish('data.x', { n: [1, 2.5, -3], s: 'é' }, { codec: MsgpackCodec });
        await server.flush();
      },
      'after-resume': async () => {
        server.publish('app.d', 'after resume');
        await server.flush();
      },
      'after-unsubscribe': async () => {
        server.publish('data.y', 'not subscribed any more');
        server.publish('app.c', 'last');
        await server.flush();
      },
    };
    const sandbox: Record<string, unknown> = {
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      MESHBUS_SEED: SEED,
      host: { url: wsUrl, WebSocket: recordingWebSocket(connections, nodeFrames), step: (name: string) => steps[name]!() },
    };
    const vctx = vm.createContext(sandbox);
    for (const part of [code.prng, code.bundle, code.scenario]) vm.runInContext(part, vctx);
    const inNode = JSON.parse(JSON.stringify(await (vm.runInContext('meshbusScenario(meshbusMobile, host)', vctx) as Promise<unknown>)));

    // What the app saw, and what the node got from it.
    expect(inNode).toEqual({
      statuses: ['disconnected', 'reconnecting', 'connected', 'outbox-flushed', 'closed'],
      connected: true,
      events: [
        { topic: 'app.a', text: 'one', headers: { k: 'v' } },
        { topic: 'app.b', text: 'ünïcødé 🚀', headers: null },
        { topic: 'data.x', value: { n: [1, 2.5, -3], s: 'é' } },
        { topic: 'app.c', text: 'last', headers: null },
        { topic: 'app.d', text: 'after resume', headers: null },
      ],
      suspended: true,
      outboxWhileAway: 1,
      tokens: 2,
      listenersLeft: 0,
      reply: 'echo:ping',
      errors: ['MB_ERR_NO_RESPONDERS', 'MB_ERR_BAD_TOPIC'],
      closed: true,
    });
    expect(fromApp).toEqual([
      { topic: 'phone.text', value: 'from the app' },
      { topic: 'phone.msgpack', value: { from: 'hermes', n: [1, 2.5, -3], t: true }, headers: { 'x-app': 'ünï' } },
      { topic: 'phone.queued', value: 'sent from the outbox' },
    ]);
    // Two connections: the first until the app went to the background, the second after.
    expect(connections).toHaveLength(2);

    // ---- 2. the same app in hermes, against the recording ----
    const dir = mkdtempSync(join(tmpdir(), 'meshbus-hermes-'));
    let run: ReturnType<typeof spawnSync>;
    try {
      const file = join(dir, 'session.js');
      const preamble = `var MESHBUS_SEED = ${SEED};\nvar MESHBUS_URL = ${JSON.stringify(wsUrl)};\nvar MESHBUS_TRANSCRIPT = ${JSON.stringify(connections.map((c) => ({ server: c.server })))};\n`;
      writeFileSync(file, [preamble, code.prng, code.bundle, code.scenario, code.harness].join(';\n'));
      run = spawnSync(hermes.path, [...HERMES_FLAGS, file], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const stdout = String(run.stdout);
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT ') || l.startsWith('FAILED '));
    expect(line, `hermes exited ${run.status}: ${stdout.slice(0, 2000)} ${String(run.stderr).slice(-2000)}`).toMatch(/^RESULT /);
    const inHermes = JSON.parse(line!.slice('RESULT '.length)) as { result: unknown; frames: Array<{ conn: number; hex: string }> };
    expect(run.status).toBe(0);

    expect(inHermes.result).toEqual(inNode);
    expect(inHermes.frames.map((f) => f.conn)).toEqual(nodeFrames.map((f) => f.conn));
    expect(inHermes.frames.map((f) => meaning(f.hex))).toEqual(nodeFrames.map((f) => meaning(f.hex)));
    // The frames say what the session was: HELLO first, then SUBs, PINGs, PUBs, REQs, UNSUB.
    const types = nodeFrames.map((f) => meaning(f.hex).type);
    expect(types[0]).toBe('HELLO');
    for (const t of ['SUB', 'PING', 'PUB', 'REQ', 'UNSUB']) expect(types).toContain(t);
  });
});
