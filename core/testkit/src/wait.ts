/** Waiting in tests: always bounded, never a fixed sleep standing in for a condition. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `cond` (sync or async) every `everyMs` until it holds. Throws
 * `timed out waiting for <what>` after `timeoutMs` (default 20 s: generous,
 * for a loaded 2-core CI box; a passing test never waits for it).
 */
export async function until(cond: () => boolean | Promise<boolean>, what = 'condition', timeoutMs = 20_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Like `until`, but answers whether `cond` held within `timeoutMs` instead of throwing. */
export async function heldWithin(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 10): Promise<boolean> {
  try {
    await until(cond, 'condition', timeoutMs, everyMs);
    return true;
  } catch {
    return false;
  }
}

/** Retries `attempt` until it resolves (every `everyMs`, for at most `timeoutMs`) and returns its value; on the timeout the error names `what` and the last rejection. */
export async function untilResolved<T>(attempt: () => Promise<T>, what = 'attempt', timeoutMs = 20_000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${(e as Error)?.message ?? String(e)}`);
    }
    await sleep(everyMs);
  }
}
