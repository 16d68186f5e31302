import { afterEach } from 'vitest';
import { silentLogger, startNode as startCoreNode, type MeshNode, type NodeOptions } from '@meshbus/core';
import { spawnNode, type NodeProcess } from './processes.js';
import { RawClient } from './raw-client.js';

/** Anything a test opens and the fixture closes after it (an SDK client, a RawClient, a server...). */
export interface Closable {
  close(): unknown;
}

/** What a fixture needs of a node: its client port and close(). */
export interface NodeLike {
  port: number;
  close(): Promise<void>;
}

export interface FixtureOptions<N extends NodeLike> {
  /**
   * The node factory under test. Default: `startNode` of `@meshbus/core`
   * (its dist). Core's own tests pass `startNode` of `../src/index.js`, so the
   * nodes, their errors and the test's imports are one copy of the code.
   */
  start?: (opts: NodeOptions) => Promise<N>;
  /** Options every node of this fixture gets (under each call's own). */
  defaults?: NodeOptions;
}

/**
 * Nodes and whatever a test opened, torn down after it: clients first, then
 * the closers (last registered first), then the nodes. Every node listens on
 * a free loopback port with a silent logger.
 */
export class Fixture<N extends NodeLike = MeshNode> {
  readonly nodes: N[] = [];
  readonly clients: Closable[] = [];
  readonly closers: Array<() => unknown> = [];

  constructor(private readonly o: FixtureOptions<N> = {}) {}

  /** Starts a node (port 0, silent logger, the fixture's defaults, then `opts`). */
  async node(opts: NodeOptions = {}): Promise<N> {
    const start = this.o.start ?? (startCoreNode as unknown as (opts: NodeOptions) => Promise<N>);
    const n = await start({ port: 0, logger: silentLogger, ...this.o.defaults, ...opts });
    this.nodes.push(n);
    return n;
  }

  /** Closes `c` after the test; returns it. */
  track<T extends Closable>(c: T): T {
    this.clients.push(c);
    return c;
  }

  /** A RawClient on the node's (or port's) client port, HELLO sent with `hello` (none when false), closed after the test. */
  async raw(n: NodeLike | number, hello: Record<string, unknown> | false = {}): Promise<RawClient> {
    return this.track(await RawClient.connect(typeof n === 'number' ? n : n.port, hello));
  }

  /** `meshbus start` as a process (see spawnNode), sent `stop` after the test (then awaited until it exits). */
  async spawnNode(args: Parameters<typeof spawnNode>[0], stop: NodeJS.Signals = 'SIGTERM'): Promise<NodeProcess> {
    const p = await spawnNode(args);
    this.defer(async () => {
      p.child.kill(stop);
      await p.exited;
    });
    return p;
  }

  /** Runs `f` after the test, before the nodes close. */
  defer(f: () => unknown): void {
    this.closers.push(f);
  }

  async teardown(): Promise<void> {
    for (const c of this.clients.splice(0)) await Promise.resolve(c.close()).catch(() => {});
    for (const f of this.closers.splice(0).reverse()) await f();
    for (const n of this.nodes.splice(0)) await n.close();
  }
}

/** A Fixture torn down by vitest after each test of the file. Call once at module level. */
export function nodeKit<N extends NodeLike = MeshNode>(o: FixtureOptions<N> = {}): Fixture<N> {
  const f = new Fixture<N>(o);
  afterEach(() => f.teardown());
  return f;
}

/** `127.0.0.1:<port>` of a node or a port. */
export function url(n: NodeLike | number): string {
  return `127.0.0.1:${typeof n === 'number' ? n : n.port}`;
}
