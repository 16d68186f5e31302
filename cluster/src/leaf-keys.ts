import { createHmac, randomBytes } from 'node:crypto';
import { ConfigError } from '@meshbus/core';
import type { ErrorCode } from '@meshbus/proto';
import { isRegionName, type LeafIdentity, type ResolvedClusterOptions } from './options.js';
import { isLeafSalt, type PeerInfo } from './peer-info.js';

/**
 * Leaf keys (cluster/README.md "Leaf keys", SPEC 7): a leaf's own
 * credential instead of the cluster secret. A hub's operator issues one per
 * leaf label from the cluster secret (`meshbus leaf-key <label>`); the leaf
 * proves it on its link and its node id is made from it, so a leaf holding
 * one can speak only as itself. One that held the cluster secret could take
 * any node id (another hub's leaf, another region's node) and one forged
 * event then made the mesh drop that node's events as old (the twenty-fourth
 * session's review); nor can it join the mesh as a full node.
 *
 * - key string: `mbleaf1.<label>.<64 hex>`, label 1..64 of A-Z a-z 0-9 _ -;
 *   hex = HMAC-SHA256(cluster secret, "meshbus-leaf-key-v1|" + label);
 * - node id: the first 16 hex of HMAC-SHA256(hex, "meshbus-leaf-id-v1|" + salt),
 *   salt 32 hex chosen at each start (a fresh id per process, as every node's);
 * - the link's challenge (peer-auth.ts) uses hex as its secret, both ways.
 */
const KEY = /^mbleaf1\.([A-Za-z0-9_-]{1,64})\.([0-9a-f]{64})$/;

/** The leaf key of `label` under the cluster `secret` (what `meshbus leaf-key` prints). ConfigError for a bad label or secret. */
export function issueLeafKey(secret: string, label: string): string {
  if (typeof secret !== 'string' || secret.length < 8) throw new ConfigError('a leaf key is issued from the cluster secret (at least 8 characters)');
  if (!isRegionName(label)) throw new ConfigError(`leaf key label must be 1..64 characters of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(label)}`);
  return `mbleaf1.${label}.${labelKey(secret, label)}`;
}

/**
 * A leaf's identity from its issued key: `salt` given, the id made from it
 * (ConfigError when it is not 32 hex digits); absent, a fresh one. ConfigError
 * for a key that is not `mbleaf1.<label>.<64 hex>`.
 */
export function leafIdentity(key: string, salt: string = randomBytes(16).toString('hex')): LeafIdentity {
  const m = KEY.exec(typeof key === 'string' ? key.trim() : '');
  if (!m) throw new ConfigError('leaf key is not mbleaf1.<label>.<64 hex digits> (as `meshbus leaf-key <label>` prints it)');
  if (!isLeafSalt(salt)) throw new ConfigError('leaf key salt must be 32 lowercase hex digits');
  return { id: leafIdFor(m[2]!, salt), key: m[0], salt };
}

/** The label and secret of an issued key (already checked by leafIdentity). */
function leafKeyParts(key: string): { label: string; hex: string } {
  const m = KEY.exec(key.trim())!;
  return { label: m[1]!, hex: m[2]! };
}

/** A hub's answer to a leaf that presents a key: the secret of its link's challenge, or why it is refused. */
export type LeafKeyCheck = { secret: string } | { code: ErrorCode; message: string };

/**
 * What a hub (holding the cluster `secret`) makes of `claimed`, a HELLO's
 * peer info with a key label and salt: refused when this node has no secret
 * to check it against, when the label is revoked (`denied`), or when the
 * node id is not the one the key and salt make (a leaf taking another's id,
 * or a key issued from another secret): all MB_ERR_AUTH_FAILED.
 */
export function checkLeafKey(claimed: PeerInfo, secret: string | undefined, denied: ReadonlySet<string> | undefined): LeafKeyCheck {
  const { keyLabel: label, keySalt: salt } = claimed;
  if (label === undefined || salt === undefined) throw new TypeError('checkLeafKey needs a key label and salt');
  if (secret === undefined) return { code: 'MB_ERR_AUTH_FAILED', message: 'this node has no cluster secret to check leaf keys against (--cluster-secret)' };
  const hex = labelKey(secret, label);
  // A key issued under another secret makes another id too: one answer for both (the leaf cannot prove that id).
  if (claimed.id !== leafIdFor(hex, salt)) {
    return { code: 'MB_ERR_AUTH_FAILED', message: `node id ${claimed.id} is not the one leaf key ${label} makes under this node's cluster secret (a key issued from another secret, or a leaf speaking as another node)` };
  }
  // Said after the id check: only who holds the key (its id says it) learns the label is revoked, not whoever asks.
  if (denied?.has(label)) return { code: 'MB_ERR_AUTH_FAILED', message: `leaf key ${label} is revoked on this node (--deny-leaf-keys)` };
  return { secret: hex };
}

function labelKey(secret: string, label: string): string {
  return createHmac('sha256', secret).update(`meshbus-leaf-key-v1|${label}`).digest('hex');
}

function leafIdFor(hex: string, salt: string): string {
  return createHmac('sha256', hex).update(`meshbus-leaf-id-v1|${salt}`).digest('hex').slice(0, 16);
}

/** What a leaf's HELLO adds to its peer info (the key's label and salt), or nothing. */
export function leafKeyInfo(leaf: LeafIdentity | undefined): { keyLabel?: string; keySalt?: string } {
  return leaf === undefined ? {} : { keyLabel: leafKeyParts(leaf.key).label, keySalt: leaf.salt };
}

/** What peer links need of the options' leaf keys (LinkSettings, link-settings.ts): the leaf's own secret, the labels refused, the keyed leaves' rules. */
export function leafKeySettings(o: Pick<ResolvedClusterOptions, 'leafKey' | 'deniedLeafKeys' | 'leafPermissions'>): { leafKeySecret?: string; deniedLeafKeys: ReadonlySet<string>; leafPermissions: ResolvedClusterOptions['leafPermissions'] } {
  return { ...(o.leafKey ? { leafKeySecret: leafKeyParts(o.leafKey.key).hex } : {}), deniedLeafKeys: new Set(o.deniedLeafKeys), leafPermissions: o.leafPermissions };
}
