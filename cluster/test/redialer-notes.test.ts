/**
 * What the redialer tells an operator about a seed (cluster/src/redialer.ts).
 * Nodes started together (`meshbus start --workers N`, a deploy) dial each
 * other before every one listens: the first attempt failing to connect was
 * a warning ("cannot link to …") at every normal start. It is said from the
 * second failure on; a refusal with a code (secret, topology) at once.
 */
import { describe, expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { Redialer, type RedialEvent } from '../src/redialer.js';

function redialer(dial: (addr: string) => Promise<boolean>) {
  const notes: Array<[RedialEvent, string, string]> = [];
  const r = new Redialer({ min: 5, max: 10, giveUpAfter: 5, maxLearned: 10, dial, note: (e, a, d) => notes.push([e, a, d.reason]) });
  return { r, notes };
}

describe('redialer notes', () => {
  it('a seed that fails its first attempt to connect and then links says nothing', async () => {
    let attempts = 0;
    const { r, notes } = redialer(async () => ++attempts >= 2);
    r.want('a:1', true);
    await until(() => attempts >= 2, 'second attempt', 2000);
    r.connected('a:1');
    r.stop();
    expect(notes).toEqual([]);
  });

  it('a seed that keeps failing to connect is said from its second failure; a coded refusal at once', async () => {
    let attempts = 0;
    const { r, notes } = redialer(async () => (attempts++, false));
    r.want('b:1', true);
    await until(() => attempts >= 3, 'three attempts', 2000);
    r.stop();
    expect(notes).toEqual([['failing', 'b:1', 'no connection']]);

    const coded = redialer(async () => true);
    coded.r.want('c:1', true);
    await until(() => coded.r.wants('c:1'), 'wanted', 1000);
    coded.r.failed('c:1', 'MB_ERR_AUTH_FAILED: peer failed the cluster secret challenge', true);
    coded.r.stop();
    expect(coded.notes.map((n) => n[0])).toEqual(['failing']);
  });
});
