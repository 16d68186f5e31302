import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeGoodbye } from '@meshbus/proto';
import { RawClient, heldWithin, sleep, spawnNode, until, type NodeProcess } from '@meshbus/testkit';

/**
 * `meshbus start` on SIGTERM drains its clients before it stops its peer
 * links. It used to stop the cluster first: the clients' GOODBYE named no
 * peer to reconnect to (`reconnect: []`), and events the draining node still
 * read and routed for its clients (a PONG came back after them) never reached
 * subscribers on other nodes (134 of 605 in one run).
 */
describe('stopping a node of a mesh (SIGTERM)', () => {
  const procs: NodeProcess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
  });

  it('drains clients while its peer links still route: every event it read reaches the mesh, GOODBYE names the peers', async () => {
    const a = await spawnNode({});
    procs.push(a);
    const b = await spawnNode({ seeds: [`127.0.0.1:${a.clusterPort}`] });
    procs.push(b);
    await until(() => a.log.join('').includes('peer link up'), 'the link', 15_000);
    const sub = await RawClient.connect(b.port);
    sub.sub('g.>', 1);
    await sub.flush();
    const pub = await RawClient.connect(a.port);
    // The subscription's interest has reached a once a probe event crosses.
    await until(async () => {
      pub.pub('g.probe', 'p');
      await pub.flush();
      await sleep(20);
      return sub.events('g.probe').length > 0;
    }, 'interest at a', 10_000);

    // Publish without pause, each batch followed by a PING: a PONG says a read (and routed) every event before it.
    let sent = 0;
    let pings = 0;
    const sentBefore = new Map<number, number>();
    const timer = setInterval(() => {
      if (pub.closed || pub.got.some((g) => g.type === FrameType.GOODBYE)) return;
      for (let i = 0; i < 5; i++) pub.pub('g.x', String(sent++));
      sentBefore.set(++pings, sent);
      pub.send({ type: FrameType.PING, correlation: pings });
    }, 1);
    await sleep(300);
    a.child.kill('SIGTERM');
    try {
      await pub.waitClosed(15_000);
    } finally {
      clearInterval(timer);
    }
    expect(await a.exited).toBe(0);

    let routed = 0;
    for (const g of pub.got) if (g.type === FrameType.PONG) routed = Math.max(routed, sentBefore.get(g.correlation) ?? 0);
    expect(routed).toBeGreaterThan(0);
    await heldWithin(() => sub.events('g.x').length >= routed, 5_000);
    const got = new Set(sub.events('g.x').map((g) => Number(g.payload.toString())));
    const missing: number[] = [];
    for (let i = 0; i < routed; i++) if (!got.has(i)) missing.push(i);
    expect({ routed, missing: missing.length }).toEqual({ routed, missing: 0 });

    const bye = pub.got.find((g) => g.type === FrameType.GOODBYE);
    expect(bye).toBeDefined();
    const reconnect = decodeGoodbye(bye!.payload).reconnect ?? [];
    expect(reconnect).toHaveLength(1);
    expect(reconnect[0]).toMatch(new RegExp(`:${b.port}$`));
    sub.close();
  }, 60_000);
});
