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
