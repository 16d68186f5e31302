import type { Logger } from '@meshbus/core';
import { thrownText } from '@meshbus/proto';

/**
 * Keeps a `meshbus start` process (and each worker) alive through a promise
 * rejection nobody handled: Node's default is to exit with code 1, which
 * turns one bug on one code path into a dead node — and, as clients fail over
 * carrying the same traffic, a dead mesh. Every rejection is a bug (the lint
 * rule no-floating-promises keeps them out of the code); here it is logged at
 * error level with the node's logger, and the node keeps serving.
 *
 * Only for a process that is a node: a library must not install process-wide
 * handlers. Returns the function that removes the handler.
 */
export function logUnhandledRejections(logger: Logger): () => void {
  const onRejection = (reason: unknown): void => {
    const err = reason instanceof Error ? (reason.stack ?? reason.message) : thrownText(reason);
    logger.error({ err }, 'unhandled promise rejection (a bug): logged, the node keeps running');
  };
  process.on('unhandledRejection', onRejection);
  return () => process.off('unhandledRejection', onRejection);
}
