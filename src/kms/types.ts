/**
 * Key management, small and capability-based (see STYLE.md): a KEK held by the KMS wraps the
 * per-secret DEKs of envelope encryption. Backends: `local` (key file or TWOWAY_MASTER_KEY) and
 * `pkcs11` (kms/pkcs11/, a KEK inside a token), joined by a KeyRing during a migration. The store
 * only ever sees wrapped DEKs and ciphertext.
 */

/** A DEK to wrap, bound to `aad` (associated data: the row it belongs to). */
export interface WrapKeyRequest {
  plaintext: Buffer;
  aad: Buffer;
}

/** A wrapped DEK and the URI of the KEK that wrapped it (`local:kek-1`). */
export interface WrappedKey {
  kekId: string;
  wrapped: Buffer;
}

export interface UnwrapKeyRequest extends WrappedKey {
  aad: Buffer;
}

export interface Kms {
  /** URI of the KEK new DEKs are wrapped with. */
  readonly kekId: string;
  wrapKey(request: WrapKeyRequest): Promise<WrappedKey>;
  /** @throws KmsError `unwrap_failed` when the KEK, the AAD or the bytes do not match. */
  unwrapKey(request: UnwrapKeyRequest): Promise<Buffer>;
  close(): Promise<void>;
}

/** A KMS failure; the message never holds key bytes. */
export class KmsError extends Error {
  constructor(
    readonly reason: 'unwrap_failed' | 'unknown_kek' | 'bad_key',
    message: string,
  ) {
    super(message);
    this.name = 'KmsError';
  }
}
