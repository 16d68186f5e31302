/*
 * Reply topics of requests: `_INBOX.<client id>.<id>.<token>`. Anyone may
 * publish to an inbox and client ids are not secret (trace records name
 * receivers), so a reply resolves request `id` only with its 128-bit token:
 * a guessed id is not enough to answer someone else's request.
 */

/** Random bytes drawn 64 tokens at a time: one WebCrypto call per 64 requests (it was ~2 % of a requester's CPU). */
const POOL = 16 * 64;
let pool = new Uint8Array(0);
let used = POOL;
/** Two hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => (b < 16 ? '0' : '') + b.toString(16));

/**
 * 128 random bits as 32 hex digits for a reply topic: WebCrypto
 * (`crypto.getRandomValues`, in Node 20, browsers and most mobile runtimes);
 * Math.random only where there is none (then replies are as guessable as
 * Math.random). Each pooled byte is used once.
 */
export function replyToken(): string {
  if (used === POOL) {
    pool = new Uint8Array(POOL);
    const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
    if (typeof c?.getRandomValues === 'function') c.getRandomValues(pool);
    else for (let i = 0; i < POOL; i++) pool[i] = Math.floor(Math.random() * 256);
    used = 0;
  }
  let s = '';
  for (const end = used + 16; used < end; used++) s += HEX[pool[used]!]!;
  return s;
}

/** `<id>.<token>` (the reply topic after the inbox prefix), or undefined when it is not that shape. */
export function parseReply(rest: string): { id: number; token: string } | undefined {
  const dot = rest.indexOf('.');
  if (dot <= 0) return undefined;
  const id = Number(rest.slice(0, dot));
  return Number.isInteger(id) && id > 0 ? { id, token: rest.slice(dot + 1) } : undefined;
}
