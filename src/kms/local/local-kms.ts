import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Kms, KmsError, type UnwrapKeyRequest, type WrapKeyRequest, type WrappedKey } from '../types.js';

const KEK_ID = 'local:kek-1';

/**
 * A KMS whose KEK is 32 bytes in process memory, from TWOWAY_MASTER_KEY or the local key file.
 * Wrapping is AES-256-GCM (NIST SP 800-38D): `wrapped` = 12-byte nonce ‖ ciphertext ‖ 16-byte tag,
 * with the request's AAD authenticated, so a wrapped DEK only unwraps for the row it was made for.
 */
export class LocalKms implements Kms {
  readonly kekId = KEK_ID;
  readonly #kek: Buffer;

  /** @throws KmsError `bad_key` unless `kek` is 32 bytes. */
  constructor(kek: Buffer) {
    if (kek.length !== 32) throw new KmsError('bad_key', 'the local KEK must be 32 bytes');
    this.#kek = Buffer.from(kek);
  }

  async wrapKey({ plaintext, aad }: WrapKeyRequest): Promise<WrappedKey> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#kek, iv);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { kekId: KEK_ID, wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]) };
  }

  async unwrapKey({ kekId, wrapped, aad }: UnwrapKeyRequest): Promise<Buffer> {
    if (kekId !== KEK_ID) throw new KmsError('unknown_kek', `unknown KEK ${kekId}`);
    if (wrapped.length < 12 + 16) throw new KmsError('unwrap_failed', 'wrapped key too short');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#kek, wrapped.subarray(0, 12));
      decipher.setAAD(aad);
      decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
      return Buffer.concat([decipher.update(wrapped.subarray(12, wrapped.length - 16)), decipher.final()]);
    } catch {
      throw new KmsError('unwrap_failed', 'the KEK or the associated data does not match');
    }
  }

  async close(): Promise<void> {
    this.#kek.fill(0);
  }
}

/** Where the local KEK comes from, as decided by {@link loadLocalKek}. */
export type KekSource = 'env' | 'file' | 'created';

/**
 * Finds the local KEK: `masterKeyBase64` (TWOWAY_MASTER_KEY) when set, else the key file; when
 * neither exists and `mayCreate` is true, writes a new random key file with mode 0600.
 * @returns the KEK bytes and where they came from, or `undefined` when there is none and creating
 *   is not allowed (a database with data and no key: the caller refuses to start).
 */
export function loadLocalKek(
  masterKeyBase64: string | undefined,
  keyFile: string,
  mayCreate: boolean,
): { kek: Buffer; source: KekSource } | undefined {
  if (masterKeyBase64) return { kek: Buffer.from(masterKeyBase64, 'base64'), source: 'env' };
  if (existsSync(keyFile)) {
    const kek = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
    if (kek.length !== 32) throw new KmsError('bad_key', `${keyFile} does not hold a base64 32-byte key`);
    return { kek, source: 'file' };
  }
  if (!mayCreate) return undefined;
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  const kek = randomBytes(32);
  writeFileSync(keyFile, `${kek.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return { kek, source: 'created' };
}
