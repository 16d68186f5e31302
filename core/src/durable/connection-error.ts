/** Error codes and messages of a lost Redis connection: the outage, which durability.ts also says ('redis connection lost'). */
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;
const CONNECTION_MESSAGES = /Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/;

/** True when `e` says the Redis connection is lost (one kind of error for the logs, however many connections say it). */
export function connectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && CONNECTION_CODES.test(code)) || CONNECTION_MESSAGES.test(String(e));
}

/**
 * What a client is told when a durable operation failed with `e`: a lost
 * connection in plain words ("redis not reachable"), else the store's own
 * message. The node's log keeps the driver's text (a newcomer review read
 * "Stream isn't writeable and enableOfflineQueue options is false" in a NACK).
 */
export function storeFailure(e: unknown): string {
  return connectionError(e) ? 'redis not reachable' : String((e as Error)?.message ?? e);
}
