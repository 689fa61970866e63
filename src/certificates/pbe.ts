/**
 * Password-based cryptography for PKCS#12 (RFC 7292) and encrypted PKCS#8 (RFC 5958): the PKCS#12
 * key-derivation function, PBKDF2 (RFC 8018) and decryption of PBES2 and PKCS#12-PBE content.
 *
 * node:crypto does the work wherever OpenSSL 3's default provider can (PBKDF2, SHA-*, AES, 3DES);
 * only RC2, which OpenSSL 3 keeps in the legacy provider, is decrypted with node-forge. We never load
 * the legacy provider: it would change what the whole process accepts (nodejs/node#40672).
 */
import { createDecipheriv, createHash, hash as oneShotHash, pbkdf2Sync } from 'node:crypto';
import { OctetString } from '@peculiar/asn1-schema';
import type { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import forge from 'node-forge';
import { octets, Pbes2Params, Pbkdf2Params, Pkcs12PbeParams, parseAsn1 } from './asn1.js';
import { CertificateError } from './errors.js';

/** A password as the caller gave it: `null` is "no password", which PKCS#12 tells apart from `''`. */
export type Password = string | null;

/**
 * Limits on key-derivation work, because a hostile file picks the iteration counts: one count of 2^31
 * would pin a CPU for hours. Real files use 2000 (Windows), 2048 (OpenSSL), 10 000 (Java) or 20 000
 * (pyca) for the PKCS#12 KDF; OWASP suggests 600 000 for PBKDF2-SHA256, and `openssl pkcs12 -export
 * -iter N` uses N for the MAC (PKCS#12 KDF) as well as for PBKDF2. Counts up to these limits are
 * read as long as the whole file stays within one WorkBudget.
 */
export const MAX_PKCS12_KDF_ITERATIONS = 1_000_000;
/** PBKDF2 runs natively, about six times faster per iteration than the PKCS#12 KDF here. */
export const MAX_PBKDF2_ITERATIONS = 2_000_000;

/**
 * Work allowed for one upload, in units of about 0.2 µs (one native PBKDF2 iteration here; one
 * PKCS#12 KDF iteration, a separate hash call, costs 6). 12 million units is a few seconds of CPU at
 * most. A legacy pyca file at 20 000 iterations uses under one million; `openssl pkcs12 -export
 * -iter 1000000` uses 8 million (6 for the MAC, 1 for each PBKDF2 bag); `-legacy -iter 1000000`
 * would need 36 million (six PKCS#12 KDF blocks) and is refused.
 */
export class WorkBudget {
  constructor(private remaining = 12_000_000) {}

  /** @throws WorkLimitError (`unsupported_format`) once the budget is spent. */
  charge(units: number): void {
    this.remaining -= units;
    if (this.remaining < 0) {
      throw new WorkLimitError('The upload asks for too much key-derivation work.');
    }
  }
}

/**
 * An `unsupported_format` refusal because a file asks for more key-derivation work than allowed
 * (an iteration count above the limit, or the WorkBudget spent). Never handed on to another
 * decoder: OpenSSL would run the same work without any limit.
 */
export class WorkLimitError extends CertificateError {
  constructor(message: string) {
    super('unsupported_format', message);
  }
}

/** The hashes PKCS#12 MACs, PBKDF2 PRFs and PBMAC1 may use here (node:crypto names). */
export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** Output and block sizes in bytes (FIPS 180-4), as RFC 7292 Appendix B.2 calls them u and v. */
const HASHES: Record<HashName, { outputBytes: number; blockBytes: number }> = {
  sha1: { outputBytes: 20, blockBytes: 64 },
  sha224: { outputBytes: 28, blockBytes: 64 },
  sha256: { outputBytes: 32, blockBytes: 64 },
  sha384: { outputBytes: 48, blockBytes: 128 },
  sha512: { outputBytes: 64, blockBytes: 128 },
};

/** Output size of `hash` in bytes: the HMAC output, and the key size PBMAC1 requires. */
export function digestBytes(hash: HashName): number {
  return HASHES[hash].outputBytes;
}

/** Digest algorithm OIDs (RFC 5754, RFC 3279) as used in PKCS#12 MacData. */
export const DIGEST_OIDS: Record<string, HashName> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** HMAC algorithm OIDs (RFC 8018 §B.1) used as PBKDF2 PRF and as PBMAC1 message authentication scheme. */
export const HMAC_OIDS: Record<string, HashName> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';

/** PBES2 encryption schemes we decrypt (RFC 8018 §B.2, RFC 3565): node cipher name and key size. */
const PBES2_CIPHERS: Record<string, { cipher: string; keyBytes: number; ivBytes: number }> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyBytes: 16, ivBytes: 16 },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyBytes: 24, ivBytes: 16 },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyBytes: 32, ivBytes: 16 },
  '1.2.840.113549.3.7': { cipher: 'des-ede3-cbc', keyBytes: 24, ivBytes: 8 },
};

/** PKCS#12 PBE schemes (RFC 7292 Appendix C). RC4 ones are left out: nothing we know still writes them. */
const PKCS12_PBE: Record<
  string,
  { cipher: 'des-ede3-cbc' | 'des-ede-cbc' | 'rc2'; keyBytes: number; rc2Bits?: number }
> = {
  '1.2.840.113549.1.12.1.3': { cipher: 'des-ede3-cbc', keyBytes: 24 },
  '1.2.840.113549.1.12.1.4': { cipher: 'des-ede-cbc', keyBytes: 16 },
  '1.2.840.113549.1.12.1.5': { cipher: 'rc2', keyBytes: 16, rc2Bits: 128 },
  '1.2.840.113549.1.12.1.6': { cipher: 'rc2', keyBytes: 5, rc2Bits: 40 },
};

function unsupported(message: string): CertificateError {
  return new CertificateError('unsupported_format', message);
}

/** Checks an iteration count read from a file: at least 1 (RFC 7292 B.2, RFC 8018 §4.2), at most `max`. */
export function checkIterations(count: number, max: number): number {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw unsupported('An iteration count is not a positive integer.');
  }
  if (count > max) throw new WorkLimitError(`An iteration count of ${count} is above the limit of ${max}.`);
  return count;
}

/** The password as RFC 7292 Appendix B.1 wants it: UTF-16BE plus two zero bytes; null is zero bytes. */
export function bmpPassword(password: Password): Buffer {
  if (password === null) return Buffer.alloc(0);
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** The password as PBKDF2 takes it in PKCS#12 (RFC 9579 §3, OpenSSL): UTF-8 bytes; null is empty. */
export function utf8Password(password: Password): Buffer {
  return Buffer.from(password ?? '', 'utf8');
}

/**
 * The PKCS#12 key-derivation function (RFC 7292 Appendix B.2). `id` 1 derives a key, 2 an IV, 3 a MAC
 * key. Returns `length` bytes.
 */
export function pkcs12Kdf(
  password: Password,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
  hash: HashName,
  budget: WorkBudget,
): Buffer {
  checkIterations(iterations, MAX_PKCS12_KDF_ITERATIONS);
  const { outputBytes: u, blockBytes: v } = HASHES[hash];
  budget.charge(6 * iterations * Math.ceil(length / u));
  const pass = bmpPassword(password);
  const repeat = (src: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] ?? 0;
    return out;
  };
  const diversifier = Buffer.alloc(v, id);
  const input = Buffer.concat([repeat(salt), repeat(pass)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let a = createHash(hash).update(diversifier).update(input).digest();
    // One-shot crypto.hash: half the cost of a Hash object per round (about 0.7 against 1.3 µs).
    for (let r = 1; r < iterations; r++) a = oneShotHash(hash, a, 'buffer');
    blocks.push(a);
    // I_j = (I_j + B + 1) mod 2^(8v), with B = A repeated to v bytes.
    const b = repeat(a);
    for (let j = 0; j < input.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (input[j + k] ?? 0) + (b[k] ?? 0) + carry;
        input[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** The derived-key length and PRF of PBKDF2 parameters, with the RFC 8018 defaults applied. */
export interface Pbkdf2Settings {
  salt: Buffer;
  iterations: number;
  keyLength?: number;
  prf: HashName;
}

/** Reads `PBKDF2-params` from an AlgorithmIdentifier whose OID must be id-PBKDF2 (RFC 8018 §A.2). */
export function readPbkdf2(kdf: AlgorithmIdentifier): Pbkdf2Settings {
  if (kdf.algorithm !== PBKDF2) {
    throw unsupported(`The key-derivation function ${kdf.algorithm} is not supported.`);
  }
  if (!kdf.parameters) throw unsupported('PBKDF2 parameters are missing.');
  const params = parseAsn1(kdf.parameters, Pbkdf2Params, 'PBKDF2 parameters');
  const prfOid = params.prf?.algorithm ?? '1.2.840.113549.2.7';
  const prf = HMAC_OIDS[prfOid];
  if (!prf) throw unsupported(`The PBKDF2 pseudo-random function ${prfOid} is not supported.`);
  const settings: Pbkdf2Settings = {
    salt: octets(params.salt),
    iterations: checkIterations(params.iterationCount, MAX_PBKDF2_ITERATIONS),
    prf,
  };
  if (params.keyLength !== undefined) settings.keyLength = params.keyLength;
  return settings;
}

/** Runs PBKDF2 (RFC 8018 §5.2) with node:crypto. */
export function pbkdf2(
  password: Password,
  settings: Pbkdf2Settings,
  keyBytes: number,
  budget: WorkBudget,
): Buffer {
  budget.charge(settings.iterations * Math.ceil(keyBytes / HASHES[settings.prf].outputBytes));
  return pbkdf2Sync(utf8Password(password), settings.salt, settings.iterations, keyBytes, settings.prf);
}

/** Thrown inside this module when padding is wrong, i.e. the password is almost certainly wrong. */
function badPassword(cause?: unknown): CertificateError {
  return new CertificateError('bad_password', 'The password does not decrypt this content.', { cause });
}

function nodeDecrypt(cipher: string, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  try {
    const decipher = createDecipheriv(cipher, key, iv);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch (err) {
    throw badPassword(err);
  }
}

function rc2Decrypt(key: Buffer, bits: number, iv: Buffer, data: Buffer): Buffer {
  if (data.length === 0 || data.length % 8 !== 0) throw badPassword();
  const cipher = forge.rc2.createDecryptionCipher(forge.util.createBuffer(key.toString('binary')), bits);
  cipher.start(forge.util.createBuffer(iv.toString('binary')));
  cipher.update(forge.util.createBuffer(data.toString('binary')));
  // forge's own unpadding only checks the last byte; we check all of them (PKCS#7, RFC 5652 §6.3).
  if (!cipher.finish(() => true)) throw badPassword();
  const out = Buffer.from(cipher.output.getBytes(), 'binary');
  const pad = out[out.length - 1] ?? 0;
  if (pad < 1 || pad > 8 || pad > out.length) throw badPassword();
  for (let i = out.length - pad; i < out.length; i++) if (out[i] !== pad) throw badPassword();
  return out.subarray(0, out.length - pad);
}

/**
 * Decrypts `data` encrypted under `algorithm` with `password`: PBES2 with PBKDF2 and AES-CBC or
 * 3DES-CBC (RFC 8018 §6.2), or the PKCS#12 PBE schemes with 3DES or RC2 (RFC 7292 Appendix C).
 *
 * @throws CertificateError `unsupported_format` for other algorithms or malformed parameters,
 *   `bad_password` when the padding does not check out.
 */
export function decryptPbe(
  algorithm: AlgorithmIdentifier,
  data: Buffer,
  password: Password,
  budget: WorkBudget,
): Buffer {
  const oid = algorithm.algorithm;
  if (!algorithm.parameters) throw unsupported(`Parameters of the encryption algorithm ${oid} are missing.`);
  if (oid === PBES2) {
    const params = parseAsn1(algorithm.parameters, Pbes2Params, 'PBES2 parameters');
    const kdf = readPbkdf2(params.keyDerivationFunc);
    const scheme = PBES2_CIPHERS[params.encryptionScheme.algorithm];
    if (!scheme) {
      throw unsupported(`The encryption scheme ${params.encryptionScheme.algorithm} is not supported.`);
    }
    if (kdf.keyLength !== undefined && kdf.keyLength !== scheme.keyBytes) {
      throw unsupported('The PBKDF2 key length does not fit the encryption scheme.');
    }
    const ivParam = params.encryptionScheme.parameters;
    const iv = ivParam ? octets(parseAsn1(ivParam, OctetString, 'The encryption IV')) : undefined;
    if (!iv || iv.length !== scheme.ivBytes) {
      throw unsupported('The encryption IV is missing or has the wrong size.');
    }
    return nodeDecrypt(scheme.cipher, pbkdf2(password, kdf, scheme.keyBytes, budget), iv, data);
  }
  const pbe = PKCS12_PBE[oid];
  if (pbe) {
    const params = parseAsn1(algorithm.parameters, Pkcs12PbeParams, 'PKCS#12 PBE parameters');
    const salt = octets(params.salt);
    const key = pkcs12Kdf(password, salt, 1, params.iterations, pbe.keyBytes, 'sha1', budget);
    const iv = pkcs12Kdf(password, salt, 2, params.iterations, 8, 'sha1', budget);
    if (pbe.cipher === 'rc2') return rc2Decrypt(key, pbe.rc2Bits ?? 128, iv, data);
    return nodeDecrypt(pbe.cipher, key, iv, data);
  }
  throw unsupported(`The encryption algorithm ${oid} is not supported.`);
}
