/**
 * A hub's leaf link up/down lines (link-state-log.ts): one a minute per key
 * label, and the last line tells the state. Before, the second change of a
 * minute and every later one were only counted: a leaf that restarted within
 * the minute logged "up", "down", and its new link's "up" never came. Here
 * with a window of 80 ms instead of a minute.
 */
import { expect, it } from 'vitest';
import { logCapture } from '@meshbus/testkit';
import { LinkStateLog } from '../src/link-state-log.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a leaf that restarts within the window: up, down, then (when the window ends) up with the changes held back', async () => {
  const log = logCapture();
  const s = new LinkStateLog(log.logger, 80);
  s.changed('edge-1', 'leaf link up', { leaf: 'a' });
  s.changed('edge-1', 'leaf link down', { leaf: 'a' });
  s.changed('edge-1', 'leaf link up', { leaf: 'b' });
  expect(log.records().map((r) => r.msg)).toEqual(['leaf link up']);
  await sleep(200);
  const said = log.records();
  expect(said.map((r) => r.msg)).toEqual(['leaf link up', 'leaf link up']);
  expect(said[1]).toMatchObject({ leaf: 'b', suppressed: 2 });
});

it('a key cycling links says at most one line a window, the last one its state', async () => {
  const log = logCapture();
  const s = new LinkStateLog(log.logger, 80);
  for (let i = 0; i < 50; i++) {
    s.changed('cycler', 'leaf link up', { leaf: `id-${i}` });
    s.changed('cycler', 'leaf link down', { leaf: `id-${i}` });
  }
  await sleep(130);
  s.changed('cycler', 'leaf link up', { leaf: 'last' });
  await sleep(200);
  const said = log.records();
  expect(said.length).toBeLessThanOrEqual(4);
  expect(said.at(-1)).toMatchObject({ msg: 'leaf link up', leaf: 'last' });
  // Another label is said at once, whatever the cycler does.
  s.changed('quiet', 'leaf link up', { leaf: 'q' });
  expect(log.records().at(-1)).toMatchObject({ leaf: 'q' });
});

it('past `max` parties a change is said as a throttled line, never held', () => {
  const log = logCapture();
  const s = new LinkStateLog(log.logger, 60_000, 2);
  for (const p of ['a', 'b', 'c']) s.changed(p, 'leaf link up', { leaf: p });
  expect(log.records().map((r) => r.leaf)).toEqual(['a', 'b', 'c']);
});
