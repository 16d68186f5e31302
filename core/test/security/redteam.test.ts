import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import type { MeshNode, NodeOptions } from '../../src/index.js';
import { RawClient, type Got } from '../raw-client.js';
import { durableSuite, until } from '../redis-helper.js';

/**
 * Red-team variants of issue #13 that were not in the issue: each test is an
 * attack that worked against the fixed code (see RELIABILITY.md, Security).
 */

const suite = durableSuite();
const { node } = suite;

type Durable = NonNullable<NodeOptions['durable']>;
function durable(extra: Partial<Durable> = {}): Durable {
  return { redis: suite.redis().url, prefix: suite.prefix(), ...extra };
}

const raws: RawClient[] = [];
afterEach(() => {
  for (const c of raws.splice(0)) c.close();
});
async function raw(n: MeshNode): Promise<RawClient> {
  const c = await RawClient.connect(n.port);
  raws.push(c);
  return c;
}
const payloads = (gs: Got[]): string[] => gs.filter((g) => g.type === FrameType.PUB).map((g) => g.payload.toString());
const queued = (n: MeshNode, topic: string): boolean => (n.durability!.matcher.forTopic(topic)?.queues.length ?? 0) > 0;

describe('reserved topics through durable work queues', () => {
  it('a durable queue on ">" never copies another client\'s inbox replies or trace records into Redis (nor out through _DLQ)', async () => {
    const n = await node({ durable: durable({ queues: { attempts: 1, backoffMs: 0, ackTimeoutMs: 200 } }) });
    const attacker = await raw(n);
    // A durable work queue on everything, and the group's dead letters.
    attacker.sub('>', 1, { q: 'steal', durable: true });
    attacker.sub('_DLQ.steal', 2);
    await attacker.flush();
    await until(() => queued(n, 'ctl.x'), 'queue registered');

    const victim = await raw(n);
    const inbox = `_INBOX.${victim.clientId}.1`;
    victim.sub(inbox, 7);
    await victim.flush();
    const responder = await raw(n);
    responder.pub(inbox, 'secret-reply');
    await victim.waitFor((g) => g.type === FrameType.PUB && g.topic === inbox);

    // Reserved topics never enter a queue whose pattern only matches them through a leading wildcard.
    expect(queued(n, inbox)).toBe(false);
    expect(queued(n, '_TRACE.0123456789abcdef')).toBe(false);

    // A control event that is dead-lettered (never ACKed) after the reply: once it is out on _DLQ, the reply would be too.
    responder.pub('ctl.x', 'control');
    await attacker.waitFor((g) => g.type === FrameType.PUB && g.topic === '_DLQ.steal' && g.payload.toString() === 'control', 10_000);
    expect(payloads(attacker.got)).not.toContain('secret-reply');
    expect(await n.durability!.deadLetters('steal')).toEqual([expect.objectContaining({ topic: 'ctl.x' })]);
  });
});

