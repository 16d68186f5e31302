/** Error codes and messages of a lost Redis connection: the outage, which durability.ts also says ('redis connection lost'). */
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;
const CONNECTION_MESSAGES = /Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/;

/** True when `e` says the Redis connection is lost (one kind of error for the logs, however many connections say it). */
export function connectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && CONNECTION_CODES.test(code)) || CONNECTION_MESSAGES.test(String(e));
}
