/*
 * Reply topics of requests: `_INBOX.<client id>.<id>.<token>`. Anyone may
 * publish to an inbox and client ids are not secret (trace records name
 * receivers), so a reply resolves request `id` only with its 128-bit token:
 * a guessed id is not enough to answer someone else's request.
 */

/**
 * 128 random bits as 32 hex digits for a reply topic: WebCrypto
 * (`crypto.getRandomValues`, in Node 20, browsers and most mobile runtimes);
 * Math.random only where there is none (then replies are as guessable as
 * Math.random).
 */
export function replyToken(): string {
  const b = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

/** `<id>.<token>` (the reply topic after the inbox prefix), or undefined when it is not that shape. */
export function parseReply(rest: string): { id: number; token: string } | undefined {
  const dot = rest.indexOf('.');
  if (dot <= 0) return undefined;
  const id = Number(rest.slice(0, dot));
  return Number.isInteger(id) && id > 0 ? { id, token: rest.slice(dot + 1) } : undefined;
}
