/**
 * Most ms a timer holds (2^31−1, about 24.8 days). Past it (Infinity
 * included) setTimeout fires after 1 ms, in Node and in browsers: a
 * `timeout: Infinity` meant "time out now".
 */
export const MAX_TIMER = 0x7fffffff;

/** setTimeout with `ms` kept within MAX_TIMER: a longer (or infinite) deadline waits 24.8 days instead of firing at once. */
export function after(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
  return setTimeout(fn, Math.min(ms, MAX_TIMER));
}
