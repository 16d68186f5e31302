import { readFileSync } from 'node:fs';
import { ClientError, isMeshbusError, thrownText } from '@meshbus/proto';
import { connect, parseServer, type Client, type ConnectOptions } from '@meshbus/sdk';
import { UsageError, stringOption, type ParsedArgs } from './command-spec.js';

/** Where a client command connects when neither --server nor MESHBUS_SERVER says. */
export const DEFAULT_SERVER = '127.0.0.1:4480';

/** What a client command connects with: flag, else environment variable, else default. */
export interface ClientTarget {
  /** Server URLs in the order tried (TLS ones as tls:// when a CA is given for bare host:port). */
  servers: string[];
  /** The list as the user gave it, for messages. */
  label: string;
  token: string | undefined;
  /** PEM text of the CA bundle to trust (--tls-ca / MESHBUS_TLS_CA), read from its file. */
  ca: string | undefined;
}

/**
 * Resolves --server / MESHBUS_SERVER, --token / MESHBUS_TOKEN and
 * --tls-ca / MESHBUS_TLS_CA (flags win). UsageError for an empty address in
 * the list, an address the SDK cannot parse (scheme, port) or a CA file that
 * cannot be read.
 */
export function clientTarget(p: ParsedArgs, env: NodeJS.ProcessEnv = process.env): ClientTarget {
  const label = stringOption(p, 'server') ?? nonEmpty(env.MESHBUS_SERVER) ?? DEFAULT_SERVER;
  const list = label.split(',').map((s) => s.trim());
  if (list.some((s) => s.length === 0)) throw new UsageError(`--server "${label}": empty address in the list`);
  const token = stringOption(p, 'token') ?? nonEmpty(env.MESHBUS_TOKEN);
  const caFile = stringOption(p, 'tls-ca') ?? nonEmpty(env.MESHBUS_TLS_CA);
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new UsageError(`--tls-ca "${caFile}": cannot read it (${(e as NodeJS.ErrnoException).code ?? thrownText(e)})`);
    }
  }
  // With a CA, a bare host:port means TLS: nobody gives a CA to talk in clear.
  const servers = ca === undefined ? list : list.map((s) => (/^[a-z]+:\/\//i.test(s) ? s : `tls://${s}`));
  for (const s of servers) {
    try {
      parseServer(s);
    } catch (e) {
      // A scheme or port the SDK cannot use is bad usage, found before connecting.
      throw new UsageError(`--server "${s}": ${(e as Error).message.replace(/^invalid argument: /, '')}`);
    }
  }
  return { servers, label, token, ca };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Connects a client command. By default with no reconnection (a CLI run
 * talks to the node once); `options` may turn it on (sub, reply). Rejects
 * with ClientError MB_ERR_CONNECT_FAILED naming the servers when none
 * answers, or with the node's own error when it refused (auth, version).
 */
export async function openClient(p: ParsedArgs, name = 'meshbus-cli', options: ConnectOptions = {}): Promise<Client> {
  const t = clientTarget(p);
  try {
    return await connect(t.servers, {
      name,
      token: t.token,
      reconnect: false,
      connectTimeout: 3000,
      ...(t.ca !== undefined ? { tls: { ca: t.ca } } : {}),
      ...options,
    });
  } catch (e) {
    // The node answered and refused (auth, version): say that, not "unreachable".
    if (isMeshbusError(e) && e.code !== 'MB_ERR_CONNECT_FAILED') throw e;
    // The last reason without the prefixes naming the server again; whole, as it may say what to do ("… speaks TLS: connect with tls://").
    const why = (e as Error).message.replace(/^could not connect to any server: /, '').replace(/^(connection closed: )?[a-z]+:\/\/\S+?: /, '');
    throw new ClientError('MB_ERR_CONNECT_FAILED', `cannot reach a meshbus node at ${t.label} (${why})`, { cause: e });
  }
}
