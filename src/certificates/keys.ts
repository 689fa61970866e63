/**
 * Private keys in, and the key policy: which key types and sizes an identity may use.
 * Formats: PKCS#8 and encrypted PKCS#8 (RFC 5958), PKCS#1 (RFC 8017), SEC1 (RFC 5915) and OpenSSL's
 * traditional encrypted PEM (`Proc-Type: 4,ENCRYPTED`). node:crypto decodes them; encrypted PKCS#8 is
 * decrypted by pbe.ts first where it can, so that password errors are reported the same way as in
 * PKCS#12.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ECParameters } from '@peculiar/asn1-ecc';
import { PrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { EncryptedPrivateKeyInfoRaw, octetStringContent } from './asn1.js';
import { CertificateError } from './errors.js';
import { decryptPbe, WorkBudget, WorkLimitError } from './pbe.js';
import { type PemBlock, toPem } from './pem.js';

/** What summaries report about a key. Sizes in bits. */
export interface KeyDescription {
  keyType: 'RSA' | 'EC' | 'Ed25519';
  keySize?: number;
  curve?: 'P-256' | 'P-384' | 'P-521';
}

/** RSA moduli below this many bits are refused (NIST SP 800-131A rev. 2 disallows 1024-bit RSA). */
export const MIN_RSA_BITS = 2048;

/** OpenSSL's names of the NIST curves we accept (RFC 5480 §2.1.1.1). */
const CURVES: Record<string, 'P-256' | 'P-384' | 'P-521'> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};

// OpenSSL error codes that mean "the password is missing or wrong" rather than "not a key".
const PASSWORD_ERRORS = new Set([
  'ERR_MISSING_PASSPHRASE',
  'ERR_OSSL_BAD_DECRYPT',
  'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED',
  'ERR_OSSL_EVP_BAD_DECRYPT',
]);

function isPasswordError(err: unknown): boolean {
  return PASSWORD_ERRORS.has((err as { code?: string } | null)?.code ?? '');
}

function passwordError(password: string | undefined, cause: unknown): CertificateError {
  return new CertificateError(
    'bad_password',
    password === undefined
      ? 'The private key is encrypted; a password is required.'
      : 'The password does not decrypt the private key.',
    { cause },
  );
}

/**
 * Why node:crypto could not load a PKCS#8 key: a well-formed PrivateKeyInfo with an algorithm OpenSSL
 * 3.0 does not know (ML-DSA, GOST) is `unsupported_key_type`; anything else is `unsupported_format`.
 */
function unloadableKey(der: Buffer | undefined, cause: unknown): CertificateError {
  if (der) {
    try {
      const info = AsnConvert.parse(der, PrivateKeyInfo);
      return new CertificateError(
        'unsupported_key_type',
        `The private key algorithm ${info.privateKeyAlgorithm.algorithm} is not supported.`,
        { cause },
      );
    } catch {
      // not PKCS#8 either: fall through
    }
  }
  return new CertificateError('unsupported_format', 'The private key could not be read.', { cause });
}

/**
 * Loads an unencrypted PKCS#8 PrivateKeyInfo (RFC 5958 §2), as found in a PKCS#12 key bag.
 *
 * @throws CertificateError `unsupported_key_type` for a well-formed key of an algorithm node:crypto
 *   cannot load, `unsupported_format` otherwise.
 */
export function privateKeyFromPkcs8(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw unloadableKey(der, err);
  }
}

/** PEM labels that hold a private key, in any of the formats this module reads. */
export function isPrivateKeyLabel(label: string): boolean {
  return label.endsWith('PRIVATE KEY');
}

/**
 * Loads a private key from one PEM block: `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`,
 * `EC PRIVATE KEY` (optionally with traditional `Proc-Type`/`DEK-Info` encryption) or `DSA PRIVATE KEY`.
 *
 * @throws CertificateError `bad_password` when the key is encrypted and the password is missing or
 *   wrong, `unsupported_key_type` for a PKCS#8 key of an unknown algorithm, `unsupported_format`
 *   otherwise.
 */
export function privateKeyFromPem(
  block: PemBlock,
  password: string | undefined,
  budget: WorkBudget = new WorkBudget(),
): KeyObject {
  if (block.label === 'ENCRYPTED PRIVATE KEY') {
    const decrypted = decryptPkcs8(block.der, password, budget);
    if (decrypted) return privateKeyFromPkcs8(decrypted);
  }
  const traditional = /ENCRYPTED/.test(block.headers?.['Proc-Type'] ?? '');
  if (traditional) {
    const cipher = (block.headers?.['DEK-Info'] ?? '').split(',')[0]?.toUpperCase() ?? '';
    if (!TRADITIONAL_CIPHERS.has(cipher)) {
      throw new CertificateError(
        'unsupported_format',
        `The PEM encryption ${cipher || '(none)'} is not supported.`,
      );
    }
    if (password === undefined) throw passwordError(password, undefined);
  }
  let text = toPem(block.label, block.der);
  if (block.headers) {
    // Re-insert RFC 1421 headers; OpenSSL reads the cipher and IV of traditional encryption from them.
    const headerLines = Object.entries(block.headers).map(([name, value]) => `${name}: ${value}\n`);
    text = text.replace('-----\n', `-----\n${headerLines.join('')}\n`);
  }
  try {
    return createPrivateKey(
      password === undefined
        ? { key: text, format: 'pem' }
        : { key: text, format: 'pem', passphrase: password },
    );
  } catch (err) {
    // Traditional encryption has no integrity check: a wrong password can pass the CBC padding
    // check and leave garbage that fails to decode. With a cipher we know, any failure is the password.
    if (isPasswordError(err) || traditional) throw passwordError(password, err);
    throw unloadableKey(block.label === 'PRIVATE KEY' ? block.der : undefined, err);
  }
}

/**
 * Loads a private key from DER: encrypted PKCS#8, PKCS#8, PKCS#1 or SEC1, tried in that order.
 *
 * @throws CertificateError `bad_password`, `unsupported_key_type` or `unsupported_format` as
 *   {@link privateKeyFromPem}.
 */
export function privateKeyFromDer(
  der: Buffer,
  password: string | undefined,
  budget: WorkBudget = new WorkBudget(),
): KeyObject {
  const decrypted = decryptPkcs8(der, password, budget);
  if (decrypted) return privateKeyFromPkcs8(decrypted);
  let firstError: unknown;
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey(
        type === 'pkcs8' && password !== undefined
          ? { key: der, format: 'der', type, passphrase: password }
          : { key: der, format: 'der', type },
      );
    } catch (err) {
      if (type === 'pkcs8' && isPasswordError(err)) throw passwordError(password, err);
      firstError ??= err;
    }
  }
  throw unloadableKey(der, firstError);
}

/** DEK-Info ciphers of traditional PEM encryption that OpenSSL 3's default provider decrypts. */
const TRADITIONAL_CIPHERS = new Set(['AES-128-CBC', 'AES-192-CBC', 'AES-256-CBC', 'DES-EDE3-CBC']);

/**
 * Decrypts an EncryptedPrivateKeyInfo (RFC 5958 §3) with the same code as PKCS#12 shrouded key bags
 * (pbe.ts), so that a wrong password is always `bad_password`: OpenSSL reports a wrong password that
 * happens to pass the CBC padding check as an undecodable key. Returns the PrivateKeyInfo DER, or
 * `undefined` when `der` is not an EncryptedPrivateKeyInfo or uses a scheme pbe.ts does not know
 * (scrypt, for one), which node:crypto then tries.
 */
function decryptPkcs8(der: Buffer, password: string | undefined, budget: WorkBudget): Buffer | undefined {
  let info: EncryptedPrivateKeyInfoRaw;
  let ciphertext: Buffer;
  try {
    info = AsnConvert.parse(der as BufferSource, EncryptedPrivateKeyInfoRaw);
    ciphertext = octetStringContent(info.encryptedData, 'The encrypted key');
  } catch {
    return undefined;
  }
  if (password === undefined) throw passwordError(password, undefined);
  let plain: Buffer;
  try {
    plain = decryptPbe(info.encryptionAlgorithm, ciphertext, password, budget);
  } catch (err) {
    // Too much work is a refusal; only a scheme pbe.ts does not know goes on to OpenSSL.
    if (err instanceof WorkLimitError) throw err;
    if (err instanceof CertificateError && err.code === 'unsupported_format') return undefined;
    throw err instanceof CertificateError ? passwordError(password, err) : err;
  }
  try {
    AsnConvert.parse(plain as BufferSource, PrivateKeyInfo);
  } catch (err) {
    throw passwordError(password, err);
  }
  return plain;
}

/**
 * True when an EC key's SubjectPublicKeyInfo carries explicit curve parameters instead of a named
 * curve (RFC 5480 §2.1.1 forbids them in PKIX; OpenSSL still reports the matching curve name for
 * them, so the encoding has to be read).
 */
function hasExplicitCurve(publicKey: KeyObject): boolean {
  const spki = AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
  const params = spki.algorithm.parameters;
  if (!params) return true;
  return AsnConvert.parse(params, ECParameters).namedCurve === undefined;
}

/**
 * Describes a key (private or public) in the summary's terms: RSA with its size, EC on P-256, P-384
 * or P-521, or Ed25519. Does not judge size; see {@link checkKeyPolicy}.
 *
 * @throws CertificateError `unsupported_key_type` for every other type (DSA, RSA-PSS, Ed448, X25519,
 *   X448, other curves).
 */
export function describeKey(key: KeyObject): KeyDescription {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') return { keyType: 'RSA', keySize: details.modulusLength ?? 0 };
  if (type === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    if (!curve) {
      throw new CertificateError(
        'unsupported_key_type',
        `The EC curve ${details.namedCurve ?? '(unnamed)'} is not supported; use P-256, P-384 or P-521.`,
      );
    }
    return { keyType: 'EC', keySize: Number(curve.slice(2)), curve };
  }
  if (type === 'ed25519') return { keyType: 'Ed25519' };
  throw new CertificateError(
    'unsupported_key_type',
    `The key type ${type ?? 'unknown'} is not supported; use RSA (${MIN_RSA_BITS} bits or more), EC P-256/P-384/P-521 or Ed25519.`,
  );
}

/**
 * Applies the identity key policy: {@link describeKey}, then RSA of at least {@link MIN_RSA_BITS}
 * bits and EC only with a named curve.
 *
 * @throws CertificateError `unsupported_key_type` (see describeKey, and explicit EC parameters),
 *   `weak_key` for a short RSA modulus.
 */
export function checkKeyPolicy(key: KeyObject): KeyDescription {
  const description = describeKey(key);
  if (description.keyType === 'RSA' && (description.keySize ?? 0) < MIN_RSA_BITS) {
    throw new CertificateError(
      'weak_key',
      `The RSA key has ${description.keySize} bits; at least ${MIN_RSA_BITS} are required.`,
    );
  }
  if (description.keyType === 'EC' && hasExplicitCurve(key.type === 'private' ? createPublicKey(key) : key)) {
    throw new CertificateError(
      'unsupported_key_type',
      'EC keys with explicit curve parameters are not supported.',
    );
  }
  return description;
}
