import { SessionError } from '@meshbus/proto';

/**
 * An invalid option (code MB_ERR_CONFIG); raised at start-up, never later.
 * Its own leaf module so option shapes (options.ts) and the modules that
 * validate parts of them (tls-config.ts, durable/store-config.ts, the HTTP
 * API) can all throw it without importing one another.
 */
export class ConfigError extends SessionError {
  constructor(detail: string) {
    super('MB_ERR_CONFIG', detail);
  }
}

/**
 * The longest delay a Node timer takes, ms (2^31 − 1, about 24.8 days). A
 * longer one fires after 1 ms instead (TimeoutOverflowWarning): a handshake
 * timeout of 3,000,000,000 closed every connection at once. Every option that
 * arms a timer is bounded by it (MB_ERR_CONFIG past it).
 */
export const MAX_TIMER_MS = 0x7fffffff;
