/** How long after a failed JWKS fetch the next one waits, ms. */
export const JWKS_RETRY_AFTER_FAILURE_MS = 1000;

type Fetch = (url: string, init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal }) => Promise<Response>;

/**
 * The fetch jose's remote JWKS uses (its `customFetch`): after a fetch that
 * failed (no answer, or not 200), the next within JWKS_RETRY_AFTER_FAILURE_MS
 * fails at once without a request. jose fetches again for every token with
 * an unknown `kid` once its cooldown after a *successful* fetch is over, and
 * a token left unchecked by an outage is no longer charged to its caller
 * (keys-unavailable.ts): without this, a client sending such tokens as fast
 * as the JWKS answered its errors made the node fetch it as fast (one at a
 * time). Tokens whose key is cached are not affected: they fetch nothing.
 */
export function jwksFetch(now: () => number = Date.now): Fetch {
  let failedAt = -Infinity;
  return async (url, init) => {
    const since = now() - failedAt;
    if (since < JWKS_RETRY_AFTER_FAILURE_MS) throw new Error(`the JWKS failed ${since} ms ago: not fetched again before ${JWKS_RETRY_AFTER_FAILURE_MS} ms`);
    try {
      const res = await fetch(url, init);
      if (res.status !== 200) failedAt = now();
      return res;
    } catch (e) {
      failedAt = now();
      throw e;
    }
  };
}
