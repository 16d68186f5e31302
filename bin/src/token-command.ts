import { readFileSync } from 'node:fs';
import { mintToken, type TopicRules } from '@meshbus/core';
import { UsageError, checkTopic, durationOption, noExtraArgs, stringOption, type ParsedArgs } from './command-spec.js';
import { TOKEN } from './command-specs.js';

/** A repeatable pattern option's values, each checked with the protocol's pattern rules (UsageError naming the flag). */
function list(p: ParsedArgs, name: string): string[] | undefined {
  const v = p.values[name] as string[] | undefined;
  for (const pattern of v ?? []) checkTopic(pattern, true, `--${name}`);
  return v && v.length > 0 ? v : undefined;
}

function rules(allow: string[] | undefined, deny: string[] | undefined): TopicRules | undefined {
  if (!allow && !deny) return undefined;
  return { ...(allow ? { allow } : {}), ...(deny ? { deny } : {}) };
}

/**
 * `meshbus token`: mints a client JWT (jose, through core's mintToken) and
 * prints it. Exit 0 with the token on stdout; 2 for bad usage (no --sub, no
 * key or both, a bad --ttl); 1 when the key file cannot be read or used.
 */
export async function runToken(p: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  noExtraArgs(p, 0, TOKEN);
  const sub = stringOption(p, 'sub');
  if (!sub) throw new UsageError('token: --sub <subject> is required');
  const keyFile = stringOption(p, 'private-key');
  const secret = stringOption(p, 'secret') ?? (keyFile === undefined ? env.MESHBUS_JWT_SECRET || undefined : undefined);
  if ((secret === undefined) === (keyFile === undefined)) throw new UsageError('token: give exactly one of --secret (or MESHBUS_JWT_SECRET) and --private-key');
  let privateKey: string | undefined;
  if (keyFile !== undefined) {
    try {
      privateKey = readFileSync(keyFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read --private-key ${keyFile}: ${(e as Error).message}`);
    }
  }
  const token = await mintToken({
    sub,
    secret,
    privateKey,
    kid: stringOption(p, 'kid'),
    ttl: durationOption(p, 'ttl', 's', 0)!,
    publish: rules(list(p, 'pub'), list(p, 'pub-deny')),
    subscribe: rules(list(p, 'sub-allow'), list(p, 'sub-deny')),
    audience: stringOption(p, 'aud'),
    issuer: stringOption(p, 'iss'),
  });
  process.stdout.write(token + '\n');
  return 0;
}
