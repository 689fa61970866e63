import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SealedSecret } from '../store/index.js';
import { type Kms, KmsError } from './types.js';

/**
 * Associated data binding a secret to its row: tenant, identity id and version. A ciphertext
 * copied to another row (or another tenant) fails authentication instead of decrypting.
 */
export function identityKeyAad(tenantId: string, identityId: string, version: number): Buffer {
  return Buffer.from(`twoway/v1/identity-key/${tenantId}/${identityId}/${version}`, 'utf8');
}

/**
 * Envelope encryption: a fresh 32-byte DEK per secret encrypts `plaintext` with AES-256-GCM under
 * `aad`; the KMS wraps the DEK under the KEK with the same AAD. The DEK is zeroed after use.
 */
export async function seal(kms: Kms, plaintext: Buffer, aad: Buffer): Promise<SealedSecret> {
  const dek = randomBytes(32);
  try {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dek, iv);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const { kekId, wrapped } = await kms.wrapKey({ plaintext: dek, aad });
    return { ciphertext: body, iv, wrappedDek: wrapped, kekId };
  } finally {
    dek.fill(0);
  }
}

/**
 * Opens a {@link seal}ed secret. The caller zeroes the returned buffer when done with it.
 * @throws KmsError `unwrap_failed` when the KEK, the AAD (another row) or the bytes do not match.
 */
export async function open(kms: Kms, sealed: SealedSecret, aad: Buffer): Promise<Buffer> {
  const dek = await kms.unwrapKey({ kekId: sealed.kekId, wrapped: sealed.wrappedDek, aad });
  try {
    const { ciphertext } = sealed;
    if (ciphertext.length < 16) throw new KmsError('unwrap_failed', 'ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', dek, sealed.iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    return Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  } catch (err) {
    if (err instanceof KmsError) throw err;
    throw new KmsError('unwrap_failed', 'the secret does not decrypt for this row');
  } finally {
    dek.fill(0);
  }
}

const CHECK_AAD = Buffer.from('twoway/v1/kek-check', 'utf8');

/** A value stored in the database at first start, so a later start can tell a wrong KEK. */
export async function makeKekCheck(kms: Kms): Promise<Buffer> {
  const { kekId, wrapped } = await kms.wrapKey({ plaintext: randomBytes(32), aad: CHECK_AAD });
  return Buffer.from(JSON.stringify({ kekId, wrapped: wrapped.toString('base64') }), 'utf8');
}

/** True when `kms` holds the KEK that wrote `check`. */
export async function verifyKekCheck(kms: Kms, check: Buffer): Promise<boolean> {
  try {
    const { kekId, wrapped } = JSON.parse(check.toString('utf8')) as { kekId: string; wrapped: string };
    await kms.unwrapKey({ kekId, wrapped: Buffer.from(wrapped, 'base64'), aad: CHECK_AAD });
    return true;
  } catch {
    return false;
  }
}
