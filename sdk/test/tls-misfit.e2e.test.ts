/**
 * A client and a port that disagree about TLS, found by a newcomer review:
 * a tcp:// client on a node's TLS port got "closed by peer" and the node
 * logged nothing; a tls:// client on a plain port got OpenSSL's "wrong
 * version number"; ws:// and wss:// alike ("WebSocket closed (code 1006)").
 * Now the node answers a plain client on its TLS port (ERROR
 * MB_ERR_HANDSHAKE_REQUIRED "this port speaks TLS: connect with tls://"),
 * says a TLS handshake on its plain port in words (log and ERROR), and the
 * SDK names the URL to use. Real nodes, gateways and sockets on loopback.
 */
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { isMeshbusError } from '@meshbus/proto';
import { silentLogger, type Logger } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { nodeKit, until, pkiForFile } from '@meshbus/testkit';
import { connect } from '../src/index.js';

const kit = nodeKit();
const pki = pkiForFile();

/** A logger keeping every info line's message, with its fields. */
function recording(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, logger: { ...silentLogger, info: (o, msg) => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`) } };
}

/** What connect() to `url` rejected with (it must reject). */
async function refusal(url: string, options: Parameters<typeof connect>[1] = {}): Promise<Error & { code?: string }> {
  const e = await connect(url, { reconnect: false, ...options }).then(
    (c) => {
      void c.close();
      throw new Error(`${url} connected`);
    },
    (err: unknown) => err as Error & { code?: string },
  );
  expect(isMeshbusError(e), String(e)).toBe(true);
  return e;
}

/** A loopback server that runs `onSocket` for each connection; closed after the test. */
async function server(make: (onSocket: (s: net.Socket) => void) => net.Server, onSocket: (s: net.Socket) => void): Promise<number> {
  const srv = make(onSocket);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  kit.defer(() => new Promise<void>((r) => srv.close(() => r())));
  return (srv.address() as net.AddressInfo).port;
}

describe('TCP', () => {
  it('a tcp:// client on the TLS port is told to use tls:// (it got "closed by peer"); the node logs it; tls:// clients are served as before', async () => {
    const { logger, lines } = recording();
    const n = await kit.node({ host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key }, logger });
    const e = await refusal(`tcp://127.0.0.1:${n.port}`);
    expect(e.code).toBe('MB_ERR_CONNECT_FAILED');
    expect(e.message).toContain('this port speaks TLS: connect with tls://');
    expect(lines.some((l) => l.startsWith('plain connection on the TLS client port refused'))).toBe(true);
    expect(n.stats.connectionsRefused).toBe(1);
    // A client that keeps reconnecting (or anyone who can open a connection) is told every time and counted,
    // but logged once per host per 5 minutes: it made one info line per connection.
    for (let i = 0; i < 3; i++) expect((await refusal(`tcp://127.0.0.1:${n.port}`)).message).toContain('connect with tls://');
    expect(lines.filter((l) => l.startsWith('plain connection on the TLS client port refused'))).toHaveLength(1);
    expect(n.stats.connectionsRefused).toBe(4);
    // The TLS handshake goes through the listener that read the first bytes: a TLS client works as ever.
    const c = kit.track(await connect(`tls://127.0.0.1:${n.port}`, { tls: { ca: pki.ca } }));
    const got = new Promise<string>((resolve) => c.subscribe('t.x', { callback: (m) => resolve(m.string()) }));
    await c.flush();
    c.publish('t.x', 'over tls');
    expect(await got).toBe('over tls');
  });

  it('a tls:// client on the plain port is told to use tcp:// (it got "wrong version number"); the node logs a TLS handshake, not a bad frame', async () => {
    const { logger, lines } = recording();
    const n = await kit.node({ host: '127.0.0.1', logger });
    const e = await refusal(`tls://127.0.0.1:${n.port}`, { tls: { ca: pki.ca } });
    expect(e.code).toBe('MB_ERR_CONNECT_FAILED');
    expect(e.message).toContain(`the server does not speak TLS on this port: connect with tcp://127.0.0.1:${n.port}`);
    expect(lines.some((l) => l.startsWith('TLS handshake on the plain client port refused'))).toBe(true);
  });

  it('a plain port answers a TLS ClientHello with an ERROR saying so (what a TLS client of any library reads as "not TLS")', async () => {
    const n = await kit.node({ host: '127.0.0.1' });
    const s = net.connect(n.port, '127.0.0.1');
    const hello = Buffer.from('16030100050100000100', 'hex');
    s.write(hello);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.on('close', r));
    const all = Buffer.concat(chunks);
    expect(all.subarray(4, 6).toString()).toBe('MB');
    expect(all.toString('latin1')).toContain('TLS handshake on a plain port: this port does not speak TLS');
  });

  it('a tcp:// client answered with a TLS record (a TLS server that sends an alert) is told to use tls://', async () => {
    // A TLS alert record (handshake_failure), as some TLS stacks answer bytes that are not TLS.
    const port = await server(net.createServer, (s) => s.resume().end(Buffer.from('150303000202' + '28', 'hex')));
    const e = await refusal(`tcp://127.0.0.1:${port}`);
    expect(e.message).toContain(`the server speaks TLS on this port: connect with tls://127.0.0.1:${port}`);
  });

  it('a tcp:// client a server drops without a byte (OpenSSL sends nothing for a first record that is not TLS) gets the hint', async () => {
    const port = await server((f) => tls.createServer({ cert: pki.cert, key: pki.key }, f), () => {});
    const e = await refusal(`tcp://127.0.0.1:${port}`);
    expect(e.message).toContain(`closed by the server before it sent anything (if it speaks TLS on this port, connect with tls://127.0.0.1:${port})`);
  });
});

describe('WebSocket', () => {
  it('wss:// on the plain gateway is told to use ws://; ws:// on the TLS gateway gets the hint to use wss://, and the node logs it', async () => {
    const { logger, lines } = recording();
    const n = await kit.node({ host: '127.0.0.1', logger });
    const plain = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    const secure = await new WsGateway(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } }).listen();
    kit.defer(() => Promise.all([plain.close(), secure.close()]));
    const toPlain = await refusal(`wss://127.0.0.1:${plain.port}/`, { tls: { ca: pki.ca } });
    expect(toPlain.message).toContain(`the server does not speak TLS on this port: connect with ws://127.0.0.1:${plain.port}/`);
    await until(() => lines.some((l) => l.startsWith('TLS handshake on a plain HTTP port refused')), 'the node to log the wss:// client');
    const toSecure = await refusal(`ws://127.0.0.1:${secure.port}/`);
    expect(toSecure.message).toContain(`if it speaks TLS on this port, connect with wss://127.0.0.1:${secure.port}/`);
    await until(() => lines.some((l) => l.startsWith('plain HTTP request on a TLS port refused')), 'the node to log the ws:// client');
  });
});
