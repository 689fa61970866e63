/**
 * WebCrypto plumbing for the platform CA: @peculiar/x509 builds and signs certificates and CRLs
 * (RFC 5280) through the WebCrypto provider set here, with keys held as non-extractable CryptoKeys.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import type { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;

/** Key algorithms a platform CA may use (`TWOWAY_CA_KEY_ALGORITHM`). */
export type CaKeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

/** WebCrypto parameters of one CA key algorithm: to generate, to import PKCS#8, to sign. */
export interface CaKeyParams {
  generate: RsaHashedKeyGenParams | EcKeyGenParams;
  import: RsaHashedImportParams | EcKeyImportParams;
  /** Signature algorithm for certificates and CRLs: SHA-256 with P-256 and RSA, SHA-384 with P-384. */
  signing: Algorithm | EcdsaParams;
}

/** The parameters of `algorithm`. */
export function caKeyParams(algorithm: CaKeyAlgorithm): CaKeyParams {
  if (algorithm === 'ecdsa-p256' || algorithm === 'ecdsa-p384') {
    const namedCurve = algorithm === 'ecdsa-p256' ? 'P-256' : 'P-384';
    const hash = algorithm === 'ecdsa-p256' ? 'SHA-256' : 'SHA-384';
    return {
      generate: { name: 'ECDSA', namedCurve },
      import: { name: 'ECDSA', namedCurve },
      signing: { name: 'ECDSA', hash } as EcdsaParams,
    };
  }
  const modulusLength = Number(algorithm.slice(4));
  const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  return {
    generate: { ...rsa, modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    import: rsa,
    signing: rsa,
  };
}

/**
 * The CA key algorithm of an existing certificate's key, as summarized by certificates/ (the
 * configured algorithm applies to a new CA only; a stored one keeps its own).
 */
export function caKeyAlgorithmOf(key: { keyType: string; keySize?: number; curve?: string }): CaKeyAlgorithm {
  if (key.keyType === 'EC' && key.curve === 'P-256') return 'ecdsa-p256';
  if (key.keyType === 'EC' && key.curve === 'P-384') return 'ecdsa-p384';
  if (key.keyType === 'RSA' && [2048, 3072, 4096].includes(key.keySize ?? 0)) {
    return `rsa-${key.keySize}` as CaKeyAlgorithm;
  }
  throw new Error(`unsupported platform CA key: ${key.keyType} ${key.curve ?? key.keySize ?? ''}`);
}

/**
 * A random positive serial number of 128 bits (RFC 5280 §4.1.2.2: positive, at most 20 octets;
 * CA/Browser Forum BR §7.1: at least 64 bits from a CSPRNG), as hex. The first octet is never zero,
 * so the DER INTEGER keeps all 16 octets (plus a 0x00 sign octet when the top bit is set, which
 * @peculiar/x509 adds).
 */
export function randomSerialHex(): string {
  let bytes = randomBytes(16);
  while (bytes[0] === 0) bytes = randomBytes(16);
  return bytes.toString('hex');
}

/** Hex of even length, as @peculiar/x509 reads serial numbers. */
export function evenHex(hex: string): string {
  return hex.length % 2 === 0 ? hex : `0${hex}`;
}

/**
 * Signs `data` with `key` as X.509 structures carry signatures (RFC 5280 §4.1.1.2-3): the
 * AlgorithmIdentifier of `signing` with the key's parameters, and the signature value (ECDSA as a
 * DER Ecdsa-Sig-Value, RFC 5480 §2.2; RSA as is). What @peculiar/x509's generators do inside, for
 * structures it does not build itself (OCSP responses, RFC 6960 §4.2.1).
 */
export async function signAsn1(
  key: CryptoKey,
  signing: Algorithm | EcdsaParams,
  data: BufferSource,
): Promise<{ algorithm: AlgorithmIdentifier; signature: ArrayBuffer }> {
  const algorithm = { ...signing, ...key.algorithm };
  const raw = await subtle.sign(algorithm, key, data);
  const formatter =
    algorithm.name === 'ECDSA' ? new x509.AsnEcSignatureFormatter() : new x509.AsnDefaultSignatureFormatter();
  const signature = formatter.toAsnSignature(algorithm, raw);
  if (signature === null) throw new Error(`cannot encode a ${algorithm.name} signature`);
  return { algorithm: new x509.AlgorithmProvider().toAsnAlgorithm(algorithm), signature };
}
