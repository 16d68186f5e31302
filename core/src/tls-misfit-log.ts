import type { Logger } from './logger.js';
import { addressKey } from './auth/auth-throttle.js';
import { ToldRecently } from './told-recently.js';

/** How often one host's TLS/plain mismatch on one kind of port is logged again, ms. */
const MISFIT_LOG_EVERY = 5 * 60_000;

/**
 * One line per host (an IPv4 address, an IPv6 /64) and message per 5
 * minutes, shared by the node's listeners: a mismatch is made by anyone who
 * can open a connection, before any authentication, and a misconfigured
 * client reconnecting (or a scanner) made one info line per connection.
 */
const told = new ToldRecently(MISFIT_LOG_EVERY);

/** Logs (info) a TLS handshake on a plain port or a plain connection on a TLS port, at most once per host and message per 5 minutes. */
export function logTlsMisfit(logger: Logger | undefined, remoteAddress: string | undefined, fields: Record<string, unknown>, message: string): void {
  if (logger === undefined || !told.due(`${addressKey(remoteAddress ?? '?')}|${message}`, undefined, message)) return;
  logger.info(fields, `${message} (said again at most every 5 min per address)`);
}
