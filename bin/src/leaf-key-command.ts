import { ConfigError } from '@meshbus/core';
import { noExtraArgs, positional, stringOption, UsageError, type ParsedArgs } from './command-spec.js';
import { LEAF_KEY } from './command-specs.js';

/**
 * `meshbus leaf-key <label>`: prints the leaf key of `<label>` under the
 * cluster secret (@meshbus/cluster issueLeafKey), for a leaf's --leaf-key.
 * Exit 0 with the key on stdout; 2 for bad usage (no label, no secret, a
 * label or secret the cluster refuses).
 */
export async function runLeafKey(p: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  noExtraArgs(p, 1, LEAF_KEY);
  const label = positional(p, 0, '<label>', LEAF_KEY);
  const secret = stringOption(p, 'cluster-secret') ?? (env.MESHBUS_CLUSTER_SECRET || undefined);
  if (secret === undefined) throw new UsageError('leaf-key: give the hubs\' --cluster-secret (or MESHBUS_CLUSTER_SECRET)');
  const { issueLeafKey } = await import('@meshbus/cluster');
  let key: string;
  try {
    key = issueLeafKey(secret, label);
  } catch (e) {
    // A label or secret the cluster refuses is the caller's to fix, as a flag would be (exit 2).
    throw e instanceof ConfigError ? new UsageError(`leaf-key: ${e.message.replace(/^invalid configuration: /, '')}`) : e;
  }
  process.stdout.write(key + '\n');
  return 0;
}
