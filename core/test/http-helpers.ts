import net from 'node:net';
import { FrameDecoder, FrameType, type Extension } from '@meshbus/proto';
import type { Fixture, RawClient } from '@meshbus/testkit';
import type { MeshNode, NodeOptions } from '../src/index.js';
import { startHttp, type HttpOptions, type HttpServer } from '../src/http/index.js';

/** An event as a test sees it, extension included (RawClient keeps no extension). */
export interface TappedEvent {
  type: number;
  topic: string;
  correlation: number;
  ext: Extension | undefined;
  payload: Buffer;
}

/**
 * Listens on a RawClient's socket with a decoder of its own and keeps every
 * PUB/REQ with its extension (headers, reply topic).
 */
export class EventTap {
  readonly events: TappedEvent[] = [];
  private readonly decoder = new FrameDecoder();

  constructor(c: RawClient) {
    c.socket.on('data', (chunk: Buffer) =>
      this.decoder.push(
        chunk,
        (f) => {
          if (f.type !== FrameType.PUB && f.type !== FrameType.REQ) return;
          this.events.push({ type: f.type, topic: f.topic, correlation: f.correlation, ext: f.ext, payload: Buffer.from(f.payload) });
        },
        () => {},
      ),
    );
  }

  async waitFor(pred: (e: TappedEvent) => boolean, timeoutMs = 5000): Promise<TappedEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out; have ${this.events.map((e) => e.topic).join(',')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text format strictly enough to catch mistakes: every
 * sample belongs to a family declared by a TYPE line before it, each family
 * is declared once, label values are quoted and unescaped, values are numbers.
 */
export function parseProm(text: string): { samples: PromSample[]; types: Map<string, string>; get(name: string, labels?: Record<string, string>): number | undefined } {
  const types = new Map<string, string>();
  const samples: PromSample[] = [];
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (types.has(name!)) throw new Error(`family ${name} declared twice`);
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!)) throw new Error(`bad type in "${line}"`);
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample line "${line}"`);
    const name = m[1]!;
    // A histogram's or summary's samples carry the family name plus _bucket, _sum or _count.
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family) || (family !== name && !['histogram', 'summary'].includes(types.get(family)!))) throw new Error(`sample ${name} before its TYPE line`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let rest = m[3];
      let lm: RegExpExecArray | null;
      let consumed = 0;
      while ((lm = re.exec(rest)) !== null) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        consumed = re.lastIndex;
      }
      if (consumed !== rest.length) throw new Error(`bad labels in "${line}"`);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    // prom-client writes NaN as "Nan" (an event-loop mean before any sample); Prometheus reads it case-blind (Go's ParseFloat).
    if (Number.isNaN(value) && !/^nan$/i.test(m[4]!)) throw new Error(`bad value in "${line}"`);
    samples.push({ name, labels, value });
  }
  return {
    samples,
    types,
    get(name, labels = {}) {
      return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    },
  };
}

export interface NodeWithHttp {
  node: MeshNode;
  http: HttpServer;
}

/** A node of `kit` with the HTTP API on a free loopback port, closed after the test. */
export async function nodeWithHttp(kit: Fixture, nodeOpts: NodeOptions = {}, httpOpts: HttpOptions = {}): Promise<NodeWithHttp> {
  const node = await kit.node(nodeOpts);
  const http = await startHttp(node, { port: 0, host: '127.0.0.1', ...httpOpts });
  kit.defer(() => http.close());
  return { node, http };
}

/** What rawHttp read: the status, the head (status line and headers) and the body. */
export interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

/**
 * Writes `request` as is on a fresh connection to `port` on 127.0.0.1 and
 * reads the answer up to the server's close (requests ask for Connection: close).
 */
export function rawHttp(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (b) => chunks.push(b));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const head = at < 0 ? text : text.slice(0, at);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: at < 0 ? '' : text.slice(at + 4) });
    });
    s.write(request);
  });
}
