import { type Static, Type } from '@sinclair/typebox';
import type { CertificateSummary } from '../certificates/index.js';
import { Literals, Timestamp } from './schemas.js';

/**
 * The public facts of one X.509 certificate (RFC 5280 §4.1), as every certificate the API shows
 * lists them (an identity version, a client certificate): properties to spread into a
 * `Type.Object`, so the OpenAPI document and the view types come from this one place.
 */
export const CertificateFacts = {
  subject: Type.String({ description: 'RFC 4514, most specific first' }),
  issuer: Type.String(),
  serialNumber: Type.String({ description: 'uppercase hex' }),
  fingerprintSha256: Type.String({ description: 'SHA-256 of the DER certificate, lowercase hex' }),
  spkiSha256: Type.String({ description: 'SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex' }),
  notBefore: Timestamp,
  notAfter: Timestamp,
  keyType: Literals(['RSA', 'EC', 'Ed25519']),
  keySize: Type.Optional(Type.Integer({ description: 'bits' })),
  curve: Type.Optional(Type.String()),
};

const CertificateFactsSchema = Type.Object(CertificateFacts);

/** {@link CertificateFacts} on the wire: instants as RFC 3339 strings. */
export type CertificateFactsView = Static<typeof CertificateFactsSchema>;

/** The {@link CertificateFacts} of a parsed certificate; `keySize` and `curve` only when known. */
export function certificateFacts(s: CertificateSummary): CertificateFactsView {
  return {
    subject: s.subject,
    issuer: s.issuer,
    serialNumber: s.serialNumber,
    fingerprintSha256: s.fingerprintSha256,
    spkiSha256: s.spkiSha256,
    notBefore: s.notBefore.toISOString(),
    notAfter: s.notAfter.toISOString(),
    keyType: s.keyType,
    ...(s.keySize !== undefined ? { keySize: s.keySize } : {}),
    ...(s.curve !== undefined ? { curve: s.curve } : {}),
  };
}
