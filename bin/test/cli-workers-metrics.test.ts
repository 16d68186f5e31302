import { afterEach, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { spawnCli, stopProcesses, untilProcess, type CliProcess, launchChromium, noBrowser, promtoolCheck } from '@meshbus/testkit';

/**
 * Issue 16: `meshbus start --workers N` has one /metrics for the whole
 * process. node:cluster hands each scrape's connection to one worker; before,
 * each answered with its own series, so successive scrapes alternated
 * between workers. Now every scrape holds every worker's series, each with a
 * `worker` label, and the dashboard lists every worker. Real processes, real
 * scrapes, a real browser.
 */

const procs: CliProcess[] = [];
afterEach(async () => {
  await stopProcesses(procs);
});

/** The `worker` label values of a family's samples in an exposition. */
function workersOf(text: string, family: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${family}{`)) continue;
    const m = /[{,]worker="([^"]*)"/.exec(line);
    if (m) out.add(m[1]!);
  }
  return [...out].sort();
}

it('start --workers 2: every scrape of /metrics shows the series of both workers', async (ctx) => {
  const port = await freePort();
  const http = await freePort();
  const w = spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'info']);
  procs.push(w);
  await untilProcess(w, () => (w.err().match(/peer link up/g) ?? []).length >= 2, 'the workers to link');
  await untilProcess(w, () => (w.err().match(/http api listening/g) ?? []).length >= 2, 'both workers to serve HTTP');
  const scrapes: string[] = [];
  // Fresh connections each time (no keep-alive): node:cluster deals them to the workers in turn.
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`http://127.0.0.1:${http}/metrics`, { headers: { connection: 'close' } });
    expect(r.status).toBe(200);
    scrapes.push(await r.text());
  }
  for (const text of scrapes) {
    expect(workersOf(text, 'meshbus_info')).toEqual(['0', '1']);
    expect(workersOf(text, 'meshbus_messages_in_total')).toEqual(['0', '1']);
    expect(workersOf(text, 'process_cpu_seconds_total')).toEqual(['0', '1']);
    expect(text).toMatch(/^meshbus_workers_answered 2$/m);
  }
  // Each worker's node has its own id: two meshbus_info series, not one summed.
  expect(scrapes[0]!.split('\n').filter((l) => l.startsWith('meshbus_info{')).length).toBe(2);

  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);

  // The merged exposition is as clean as one node's (skipped, with the reason, without promtool).
  const check = promtoolCheck(ctx, scrapes[0]!);
  expect(check.out).toBe('');
  expect(check.code).toBe(0);
});

it('start --workers 2: /v1/workers and the dashboard list both workers whichever one answers', async (ctx) => {
  const port = await freePort();
  const http = await freePort();
  const w = spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'info']);
  procs.push(w);
  await untilProcess(w, () => (w.err().match(/http api listening/g) ?? []).length >= 2, 'both workers to serve HTTP');
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`http://127.0.0.1:${http}/v1/workers`, { headers: { connection: 'close' } });
    const body = (await r.json()) as { workers: Array<{ worker: number; id: string; name: string; pid: number }> };
    expect(body.workers.map((x) => x.worker)).toEqual([0, 1]);
    expect(body.workers.map((x) => x.name)).toEqual(['node#0', 'node#1']);
    expect(new Set(body.workers.map((x) => x.pid)).size).toBe(2);
  }

  const chromium = await launchChromium({ viewport: { width: 1280, height: 900 } });
  if (typeof chromium === 'string') noBrowser(ctx, 'workers dashboard test', chromium);
  try {
    const page = chromium.browser.pages()[0] ?? (await chromium.browser.newPage());
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.locator('#workers-card:not([hidden])').waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr').length === 2);
    const first = await page.locator('#workers tbody tr td:first-child').allTextContents();
    expect(first).toEqual(['#0', '#1']);
  } finally {
    await chromium.close();
  }
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});
