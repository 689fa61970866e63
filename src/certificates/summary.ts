/**
 * What we show and store about a certificate: names, serial, validity, key, signature algorithm and
 * fingerprints (RFC 5280 §4.1). Never key material.
 */
import { createHash, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { CertificateOuter, parseAsn1 } from './asn1.js';
import { CertificateError, wrapErrors } from './errors.js';
import { describeKey } from './keys.js';
import { formatName, formatSubjectAltNames } from './names.js';

/** The API's `Version`/`ClientCertificate` certificate fields (API.md). */
export interface CertificateSummary {
  /** RFC 4514 string, most specific first: `CN=leaf,O=Example,C=US`. */
  subject: string;
  issuer: string;
  /** Uppercase hex, as OpenSSL prints it. */
  serialNumber: string;
  /** SHA-256 over the DER certificate, lowercase hex, no colons. */
  fingerprintSha256: string;
  /** SHA-256 over the DER SubjectPublicKeyInfo, lowercase hex. */
  spkiSha256: string;
  notBefore: Date;
  notAfter: Date;
  keyType: 'RSA' | 'EC' | 'Ed25519';
  /** Bits: the RSA modulus or the EC field size (256, 384, 521). Absent for Ed25519. */
  keySize?: number;
  curve?: 'P-256' | 'P-384' | 'P-521';
  /** OpenSSL's long name: `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `Ed25519`; else the OID. */
  signatureAlgorithm: string;
  /** `DNS:a.example`, `IP:127.0.0.1`, `URI:…`, `email:…`, in certificate order. */
  subjectAltNames: string[];
}

/** One certificate of a chain as the API lists it. */
export interface ChainEntry {
  subject: string;
  issuer: string;
  notAfter: Date;
  fingerprintSha256: string;
}

/** Signature algorithm OIDs (RFC 3279, RFC 4055, RFC 5758, RFC 8410, FIPS 204) and their names. */
const SIGNATURE_ALGORITHMS: Record<string, { name: string; weak?: true }> = {
  '1.2.840.113549.1.1.2': { name: 'md2WithRSAEncryption', weak: true },
  '1.2.840.113549.1.1.3': { name: 'md4WithRSAEncryption', weak: true },
  '1.2.840.113549.1.1.4': { name: 'md5WithRSAEncryption', weak: true },
  '1.2.840.113549.1.1.5': { name: 'sha1WithRSAEncryption', weak: true },
  '1.3.14.3.2.29': { name: 'sha1WithRSASignature', weak: true },
  '1.2.840.113549.1.1.14': { name: 'sha224WithRSAEncryption' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption' },
  '1.2.840.113549.1.1.10': { name: 'rsassaPss' },
  '1.2.840.10045.4.1': { name: 'ecdsa-with-SHA1', weak: true },
  '1.2.840.10045.4.3.1': { name: 'ecdsa-with-SHA224' },
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512' },
  '1.2.840.10040.4.3': { name: 'dsa-with-SHA1', weak: true },
  '2.16.840.1.101.3.4.3.1': { name: 'dsa-with-SHA224' },
  '2.16.840.1.101.3.4.3.2': { name: 'dsa-with-SHA256' },
  '1.3.101.112': { name: 'Ed25519' },
  '1.3.101.113': { name: 'Ed448' },
  '2.16.840.1.101.3.4.3.17': { name: 'ML-DSA-44' },
  '2.16.840.1.101.3.4.3.18': { name: 'ML-DSA-65' },
  '2.16.840.1.101.3.4.3.19': { name: 'ML-DSA-87' },
};

/** Hash OIDs that make an RSASSA-PSS signature weak (RFC 4055 §3.1; SHA-1 is the default). */
const WEAK_HASHES = new Set([
  '1.3.14.3.2.26',
  '1.2.840.113549.2.5',
  '1.2.840.113549.2.2',
  '1.2.840.113549.2.4',
]);

const parsed = new WeakMap<X509Certificate, Certificate>();

/**
 * The certificate decoded by asn1-x509, once per X509Certificate object.
 *
 * @throws CertificateError `unsupported_format` when the DER does not decode.
 */
export function decodeCertificate(cert: X509Certificate): Certificate {
  let value = parsed.get(cert);
  if (!value) {
    value = parseAsn1(cert.raw, Certificate, 'The certificate');
    parsed.set(cert, value);
  }
  return value;
}

/**
 * SHA-256 over the DER certificate, 64 lowercase hex digits without colons (the `fingerprintSha256`
 * of every view and log line). Takes anything with the DER in `raw`: an X509Certificate or a TLS
 * socket's PeerCertificate, whose own `fingerprint256` is upper case with colons.
 */
export function fingerprintSha256(cert: Pick<X509Certificate, 'raw'>): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** SHA-256 over the DER SubjectPublicKeyInfo of `key` (a private key counts as its public half). */
export function spkiSha256(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/**
 * The certificate's signatureAlgorithm (RFC 5280 §4.1.1.2), read from the DER because Node 20 has no
 * getter for it: OpenSSL's long name where we know the OID, else the OID itself as `name`.
 *
 * @throws CertificateError `unsupported_format` when the outer structure does not decode.
 */
export function signatureAlgorithmOf(cert: X509Certificate): { name: string; oid: string } {
  const outer = parseAsn1(cert.raw, CertificateOuter, 'The certificate');
  const oid = outer.signatureAlgorithm.algorithm;
  return { name: SIGNATURE_ALGORITHMS[oid]?.name ?? oid, oid };
}

/**
 * True when the certificate's own signature uses MD2, MD4, MD5 or SHA-1, including RSASSA-PSS with a
 * SHA-1 or MD5 hash (collisions are practical: SHAttered, 2017; Flame's MD5 certificate, 2012).
 * Unreadable PSS parameters count as weak.
 *
 * @throws CertificateError `unsupported_format` when the outer structure does not decode.
 */
export function hasWeakSignature(cert: X509Certificate): boolean {
  const outer = parseAsn1(cert.raw, CertificateOuter, 'The certificate');
  const { algorithm, parameters } = outer.signatureAlgorithm;
  if (SIGNATURE_ALGORITHMS[algorithm]?.weak) return true;
  if (algorithm !== '1.2.840.113549.1.1.10') return false;
  if (!parameters) return true;
  try {
    // hashAlgorithm defaults to SHA-1 when absent (RFC 4055 §3.1); asn1-rsa fills the default in.
    return WEAK_HASHES.has(AsnConvert.parse(parameters, RsaSaPssParams).hashAlgorithm.algorithm);
  } catch {
    return true;
  }
}

/** Subject as an RFC 4514 string. */
export function subjectOf(cert: X509Certificate): string {
  return formatName(decodeCertificate(cert).tbsCertificate.subject);
}

/** Issuer as an RFC 4514 string. */
export function issuerOf(cert: X509Certificate): string {
  return formatName(decodeCertificate(cert).tbsCertificate.issuer);
}

/** notBefore and notAfter (RFC 5280 §4.1.2.5) as Dates. */
export function validityOf(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const { validity } = decodeCertificate(cert).tbsCertificate;
  return { notBefore: validity.notBefore.getTime(), notAfter: validity.notAfter.getTime() };
}

function subjectAltNamesOf(cert: X509Certificate): string[] {
  const extension = decodeCertificate(cert).tbsCertificate.extensions?.find(
    (e) => e.extnID === id_ce_subjectAltName,
  );
  if (!extension) return [];
  try {
    return formatSubjectAltNames(extension.extnValue.buffer);
  } catch {
    // A SAN we cannot decode is shown as absent rather than refusing the whole certificate.
    return [];
  }
}

/**
 * Summarizes a certificate for the API (see {@link CertificateSummary}).
 *
 * @throws CertificateError `unsupported_key_type` when the public key is not RSA, EC on P-256/384/521
 *   or Ed25519 (the summary has no words for other keys); `unsupported_format` when the DER does not
 *   decode as RFC 5280.
 */
export function summarize(cert: X509Certificate): CertificateSummary {
  return wrapErrors('unsupported_format', 'The certificate could not be read.', () =>
    summarizeUnchecked(cert),
  );
}

/** The certificate's public key; OpenSSL decodes it lazily and fails here for unknown algorithms. */
export function publicKeyOf(cert: X509Certificate): KeyObject {
  try {
    return cert.publicKey;
  } catch (err) {
    throw new CertificateError(
      'unsupported_key_type',
      "The certificate's public key algorithm is not supported.",
      {
        cause: err,
      },
    );
  }
}

function summarizeUnchecked(cert: X509Certificate): CertificateSummary {
  const publicKey = publicKeyOf(cert);
  const key = describeKey(publicKey);
  const summary: CertificateSummary = {
    subject: subjectOf(cert),
    issuer: issuerOf(cert),
    serialNumber: cert.serialNumber.toUpperCase(),
    fingerprintSha256: fingerprintSha256(cert),
    spkiSha256: spkiSha256(publicKey),
    ...validityOf(cert),
    keyType: key.keyType,
    signatureAlgorithm: signatureAlgorithmOf(cert).name,
    subjectAltNames: subjectAltNamesOf(cert),
  };
  if (key.keySize !== undefined) summary.keySize = key.keySize;
  if (key.curve !== undefined) summary.curve = key.curve;
  return summary;
}

/** The chain listing of one certificate. */
export function chainEntry(cert: X509Certificate): ChainEntry {
  return {
    subject: subjectOf(cert),
    issuer: issuerOf(cert),
    notAfter: validityOf(cert).notAfter,
    fingerprintSha256: fingerprintSha256(cert),
  };
}
