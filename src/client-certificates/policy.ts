/**
 * The client certificate policy of a deployment: which keys, signatures and validity periods an
 * inbound client certificate (uploaded, or issued from a CSR) may have. Defaults follow current
 * practice: RSA 2048/3072/4096, EC P-256/P-384 and Ed25519 keys (NIST SP 800-131A rev. 2; RFC 8446
 * §4.2.3 signature schemes), SHA-256 or stronger signatures, and at most 398 days of validity (the
 * CA/Browser Forum limit for TLS certificates since 2020).
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { TENANT_URI_PREFIX } from '../ca/naming.js';
import {
  type CertificateSummary,
  checkClientUsage,
  checkKeyPolicy,
  DAY_MS,
  hasWeakSignature,
  type KeyDescription,
  MIN_RSA_BITS,
  signatureAlgorithmOf,
  summarize,
} from '../certificates/index.js';
import { AppError, toAppError } from '../errors/app-error.js';

/** Key type names of `TWOWAY_CLIENT_CERT_KEY_TYPES`. */
export type KeyTypeName =
  | 'rsa-2048'
  | 'rsa-3072'
  | 'rsa-4096'
  | 'ec-p256'
  | 'ec-p384'
  | 'ec-p521'
  | 'ed25519';

export interface ClientCertificatePolicy {
  keyTypes: ReadonlySet<string>;
  /** Longest notBefore..notAfter span accepted, in days. Default 398. */
  maxValidityDays: number;
  /** Validity of a certificate issued from a CSR when the request names none, in days. Default 365. */
  issueValidityDays: number;
}

/** The policy from the configuration's slice. */
export function clientCertificatePolicy(config: {
  clientCertKeyTypes: string;
  clientCertMaxValidityDays: number;
  clientCertIssueValidityDays: number;
}): ClientCertificatePolicy {
  return {
    keyTypes: new Set(config.clientCertKeyTypes.split(',').map((t) => t.trim())),
    maxValidityDays: config.clientCertMaxValidityDays,
    issueValidityDays: config.clientCertIssueValidityDays,
  };
}

/** Signatures of SHA-256 or stronger (RFC 4055, RFC 5758, RFC 8410), by OpenSSL's long name. */
const STRONG_SIGNATURES = new Set([
  'sha256WithRSAEncryption',
  'sha384WithRSAEncryption',
  'sha512WithRSAEncryption',
  'ecdsa-with-SHA256',
  'ecdsa-with-SHA384',
  'ecdsa-with-SHA512',
  'Ed25519',
  'rsassaPss',
]);

/** `rsa-2048`, `ec-p256`, `ed25519`, ... for a described key. */
export function keyTypeName(key: KeyDescription): string {
  if (key.keyType === 'RSA') return `rsa-${key.keySize ?? 0}`;
  if (key.keyType === 'EC') return `ec-${(key.curve ?? '').toLowerCase().replace('-', '')}`;
  return 'ed25519';
}

/**
 * Checks a public key against the policy.
 * @throws AppError `weak_key` (RSA below 2048 bits), `key_type_not_allowed` (anything else outside
 *   the configured list), `unsupported_key_type` (not RSA, EC on a named NIST curve or Ed25519).
 */
export function checkKey(key: KeyObject, policy: ClientCertificatePolicy): KeyDescription {
  let description: KeyDescription;
  try {
    description = checkKeyPolicy(key);
  } catch (err) {
    throw toAppError(err);
  }
  const name = keyTypeName(description);
  if (!policy.keyTypes.has(name)) {
    if (description.keyType === 'RSA' && (description.keySize ?? 0) < MIN_RSA_BITS) {
      throw new AppError(
        'weak_key',
        `The RSA key has ${description.keySize} bits; at least ${MIN_RSA_BITS} are required.`,
      );
    }
    throw new AppError(
      'key_type_not_allowed',
      `The key (${name}) is not allowed for client certificates; allowed: ${[...policy.keyTypes].join(', ')}.`,
    );
  }
  return description;
}

/**
 * Checks a client certificate against the policy, in this order: readable key (`unsupported_key_type`,
 * `unsupported_format`); key type (`weak_key`, `key_type_not_allowed`); signature SHA-256 or
 * stronger (`weak_signature`); `now` within notBefore..notAfter (`certificate_expired`,
 * `certificate_not_yet_valid`, RFC 5280 §4.1.2.5); validity span at most `maxValidityDays`
 * (`validity_too_long`); an extendedKeyUsage, when present, allowing clientAuth
 * (`client_auth_not_allowed`); a keyUsage, when present, allowing digitalSignature
 * (`digital_signature_not_allowed`). A self-signed certificate is fine: registration pins the exact
 * certificate by fingerprint, so no chain is built.
 * @returns the certificate's summary.
 */
export function checkClientCertificate(
  cert: X509Certificate,
  policy: ClientCertificatePolicy,
  now: Date,
): CertificateSummary {
  let summary: CertificateSummary;
  try {
    summary = summarize(cert);
  } catch (err) {
    throw toAppError(err);
  }
  checkKey(cert.publicKey, policy);
  const signature = signatureAlgorithmOf(cert).name;
  if (!STRONG_SIGNATURES.has(signature) || hasWeakSignature(cert)) {
    throw new AppError(
      'weak_signature',
      `The certificate is signed with ${signature}; client certificates need SHA-256 or stronger.`,
    );
  }
  if (now.getTime() > summary.notAfter.getTime()) {
    throw new AppError(
      'certificate_expired',
      `The certificate expired at ${summary.notAfter.toISOString()}.`,
    );
  }
  if (now.getTime() < summary.notBefore.getTime()) {
    throw new AppError(
      'certificate_not_yet_valid',
      `The certificate is not valid before ${summary.notBefore.toISOString()}.`,
    );
  }
  const spanMs = summary.notAfter.getTime() - summary.notBefore.getTime();
  if (spanMs > policy.maxValidityDays * DAY_MS) {
    throw new AppError(
      'validity_too_long',
      `The certificate is valid for ${Math.ceil(spanMs / DAY_MS)} days; at most ${policy.maxValidityDays} are allowed.`,
    );
  }
  try {
    checkClientUsage(cert);
  } catch (err) {
    throw toAppError(err);
  }
  return summary;
}

/** Percent-decoding rounds the reserved-name check looks through (a platform that decodes twice). */
const DECODE_ROUNDS = 3;

/** Each run of `%XX` escapes as the UTF-8 text it encodes (U+FFFD for invalid bytes), rest as is. */
function percentDecoded(value: string): string {
  return value.replace(/(?:%[0-9a-f]{2})+/gi, (run) =>
    Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'),
  );
}

/**
 * True when a subjectAltName as summarized (`URI:urn:twoway:tenant:acme`, `DNS:...`) names a Twoway
 * tenant the way certificates of the platform CA do (ca/naming.ts), however spelt: compared after
 * percent-decoding (up to {@link DECODE_ROUNDS} times: the edge hands SAN URIs to the platform in
 * X-Forwarded-Client-Cert, where a reader decodes `urn:twoway:tenant%3Aacme` to tenant acme),
 * NFKC normalisation (full-width letters), trimming and lowercasing (URN scheme and namespace are
 * case-insensitive, RFC 8141 §3.1).
 */
export function namesTenant(subjectAltName: string): boolean {
  let value = subjectAltName.slice(subjectAltName.indexOf(':') + 1);
  for (let round = 0; round <= DECODE_ROUNDS; round += 1) {
    if (value.normalize('NFKC').trim().toLowerCase().startsWith(TENANT_URI_PREFIX)) return true;
    const decoded = percentDecoded(value);
    if (decoded === value) return false;
    value = decoded;
  }
  return false;
}

/**
 * Refuses a tenant's own certificate that names a Twoway tenant in a subjectAltName
 * ({@link namesTenant}): only certificates the platform CA issues may.
 * @throws AppError `reserved_tenant_name`
 */
export function checkNoTenantName(subjectAltNames: readonly string[]): void {
  if (subjectAltNames.some(namesTenant)) {
    throw new AppError(
      'reserved_tenant_name',
      `The certificate's subjectAltName holds a ${TENANT_URI_PREFIX} URI; only certificates the platform CA issues name a tenant.`,
    );
  }
}
