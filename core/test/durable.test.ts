import { describe, expect, it } from 'vitest';
import { durableSuite, until } from '@meshbus/testkit';
import { historyScenarios } from './durable-scenarios.js';
import { startNode } from '../src/index.js';

const suite = durableSuite({ start: startNode });
const { node, client } = suite;

historyScenarios(suite);

describe('durable topics without redis', () => {
  it('a node without redis runs plain pub/sub and refuses durable subscriptions', async () => {
    const n = await node({});
    expect(n.durability).toBeUndefined();
    const c = await client(n);
    const s = c.subscribe('x.y', { since: { epoch: '', offset: 0 } });
    const errs: string[] = [];
    c.on('status', (st) => {
      if (st.type === 'error') errs.push(st.error.code);
    });
    await c.flush();
    await until(() => errs.length > 0, 'error');
    expect(errs[0]).toBe('MB_ERR_NOT_DURABLE');
    expect(s.recovered).toBeUndefined();
    // the subscription ends with the refusal instead of staying open and silent (issue #16)
    expect((await s.closed)?.code).toBe('MB_ERR_NOT_DURABLE');
  });
});
