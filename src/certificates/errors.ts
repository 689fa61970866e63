/**
 * Every way an uploaded certificate, key or PKCS#12 file can be refused. Each code is also a code of
 * errors/catalogue.ts, so `toAppError()` maps a CertificateError to its HTTP problem without this
 * folder importing anything of ours.
 */
export type CertificateErrorCode =
  | 'unsupported_format'
  | 'bad_password'
  | 'no_private_key'
  | 'no_certificate'
  | 'multiple_private_keys'
  | 'key_mismatch'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'weak_key'
  | 'unsupported_key_type'
  | 'weak_signature'
  | 'chain_mismatch'
  | 'client_auth_not_allowed'
  | 'digital_signature_not_allowed'
  | 'java_keystore'
  | 'invalid_trust_anchors'
  | 'trust_anchors_too_large';

/**
 * A refusal with a stable `code`. `message` is safe to show the uploader: it names the problem and,
 * where useful, a certificate by subject or fingerprint, but never holds a password, key bytes or PEM.
 * `cause` (when set) is the library error behind it, for the log only: OpenSSL and node-forge
 * messages do not contain key material, but they are not written for end users either.
 */
export class CertificateError extends Error {
  readonly code: CertificateErrorCode;

  constructor(code: CertificateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CertificateError';
    this.code = code;
  }
}

/** True when `err` is a CertificateError, optionally with the given code. */
export function isCertificateError(err: unknown, code?: CertificateErrorCode): err is CertificateError {
  return err instanceof CertificateError && (code === undefined || err.code === code);
}

/**
 * Runs `fn`; any exception that is not already a CertificateError becomes one with `code` and
 * `message`. Parsers (asn1-schema, node-forge, OpenSSL) throw untyped errors on hostile input; this
 * is the one place that turns them into a refusal instead of a 500.
 */
export function wrapErrors<T>(code: CertificateErrorCode, message: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    throw new CertificateError(code, message, { cause: err });
  }
}
