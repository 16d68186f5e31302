import { readFile, stat } from 'node:fs/promises';
import type { CompactJWSHeaderParameters, FlattenedJWSInput, JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { Jose } from './jose-loader.js';
import { keysUnavailable } from './keys-unavailable.js';

type KeySet = ReturnType<Jose['createLocalJWKSet']>;

/**
 * A JSON Web Key Set read from a file, kept current for key rotation: the
 * file is read again when its size, modification time or inode changes (one
 * stat per verification, cheaper than the signature check it precedes) and
 * when a token names a `kid` the loaded set lacks (a rotation written in
 * place within the same clock tick), at most once a second. A file that
 * cannot be read or parsed leaves tokens unchecked (keysUnavailable:
 * MB_ERR_NOT_READY, not charged to the caller) until it is fixed; the last
 * good set is not kept, so a key removed by truncating the file is not
 * trusted.
 */
export class JwksFile {
  private set: KeySet | undefined;
  private stamp = '';
  private lastUnknownReload = 0;
  /** One reload at a time: concurrent handshakes share it. */
  private loading: Promise<KeySet> | undefined;

  constructor(
    readonly path: string,
    private readonly jose: Jose,
  ) {}

  /** The key for a token header (jose's getKey contract); rejects with jose's JWKS errors (the token's fault) or keysUnavailable. */
  async key(header: CompactJWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    let set = await this.current();
    try {
      return await set(header, token);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw e;
      const now = Date.now();
      // The file's stamp was checked for this token: the set is what the file holds, so the kid is not there (the token's fault).
      if (now - this.lastUnknownReload < 1000) throw e;
      this.lastUnknownReload = now;
      set = await this.reload();
      return set(header, token);
    }
  }

  private async current(): Promise<KeySet> {
    const s = await this.statStamp();
    if (this.set && s === this.stamp) return this.set;
    return this.reload();
  }

  private async statStamp(): Promise<string> {
    try {
      const st = await stat(this.path, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch (e) {
      throw keysUnavailable(`JWKS file ${this.path} cannot be read: ${(e as Error).message}`, e);
    }
  }

  private reload(): Promise<KeySet> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<KeySet> {
    this.set = undefined;
    const stamp = await this.statStamp();
    let jwks: unknown;
    try {
      jwks = JSON.parse(await readFile(this.path, 'utf8'));
    } catch (e) {
      throw keysUnavailable(`JWKS file ${this.path} cannot be read: ${(e as Error).message}`, e);
    }
    let set: KeySet;
    try {
      set = this.jose.createLocalJWKSet(jwks as JSONWebKeySet);
    } catch (e) {
      throw keysUnavailable(`JWKS file ${this.path} is not a JSON Web Key Set: ${(e as Error).message}`, e);
    }
    this.set = set;
    this.stamp = stamp;
    return set;
  }
}
