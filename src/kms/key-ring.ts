import { type Kms, KmsError, type UnwrapKeyRequest, type WrapKeyRequest, type WrappedKey } from './types.js';

/** The scheme of a key URI: `local` of `local:kek-1`, `pkcs11` of `pkcs11:token=...`. */
function schemeOf(kekId: string): string {
  return kekId.slice(0, Math.max(0, kekId.indexOf(':')));
}

/**
 * Several KMS backends as one: new DEKs are wrapped by `primary`; a wrapped DEK is unwrapped by
 * the backend of its `kekId`'s scheme (the primary first). While a deployment moves from one KEK to
 * another (local → pkcs11), rows under either open; `twoway kms rotate` moves them all to the
 * primary, after which the old KEK is no longer needed.
 */
export class KeyRing implements Kms {
  readonly #primary: Kms;
  readonly #previous: Kms[];

  /** @param previous backends kept only to unwrap rows not yet moved; closed with the ring. */
  constructor(primary: Kms, previous: Kms[] = []) {
    this.#primary = primary;
    this.#previous = previous;
  }

  get kekId(): string {
    return this.#primary.kekId;
  }

  wrapKey(request: WrapKeyRequest): Promise<WrappedKey> {
    return this.#primary.wrapKey(request);
  }

  /** @throws KmsError `unknown_kek` when no backend of the ring has `kekId`; `unwrap_failed`. */
  async unwrapKey(request: UnwrapKeyRequest): Promise<Buffer> {
    const scheme = schemeOf(request.kekId);
    for (const kms of [this.#primary, ...this.#previous]) {
      if (schemeOf(kms.kekId) !== scheme) continue;
      try {
        return await kms.unwrapKey(request);
      } catch (err) {
        if (!(err instanceof KmsError && err.reason === 'unknown_kek')) throw err;
      }
    }
    throw new KmsError('unknown_kek', `unknown KEK ${request.kekId}`);
  }

  async close(): Promise<void> {
    for (const kms of [this.#primary, ...this.#previous]) await kms.close();
  }
}
