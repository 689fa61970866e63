import { Type } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';

const ClientCertificateProperties = {
  id: Type.String(),
  tenant: Type.String(),
  name: Type.String(),
  source: Type.Union([Type.Literal('uploaded'), Type.Literal('issued')]),
  status: Type.Union(['active', 'expiring', 'expired', 'revoked'].map((s) => Type.Literal(s))),
  subject: Type.String({ description: 'RFC 4514, most specific first' }),
  issuer: Type.String(),
  serialNumber: Type.String({ description: 'uppercase hex' }),
  fingerprintSha256: Type.String({ description: 'SHA-256 of the DER certificate, lowercase hex' }),
  spkiSha256: Type.String({ description: 'SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex' }),
  notBefore: Timestamp,
  notAfter: Timestamp,
  keyType: Type.Union([Type.Literal('RSA'), Type.Literal('EC'), Type.Literal('Ed25519')]),
  keySize: Type.Optional(Type.Integer({ description: 'bits' })),
  curve: Type.Optional(Type.String()),
  createdAt: Timestamp,
  revokedAt: Type.Optional(Timestamp),
};

/** API.md "ClientCertificate": public facts only, never key material. */
export const ClientCertificateSchema = Type.Object(ClientCertificateProperties, {
  $id: 'ClientCertificate',
});

/** A certificate issued from a CSR: the ClientCertificate plus the certificate and its chain. */
export const IssuedClientCertificateSchema = Type.Object(
  {
    ...ClientCertificateProperties,
    certificatePem: Type.String({ description: 'The issued certificate, PEM' }),
    chainPem: Type.String({ description: 'The issuing CA then the root CA, PEM' }),
  },
  { $id: 'IssuedClientCertificate' },
);

/**
 * JSON upload (documented; `multipart/form-data` with `file` or `certificate`, as a file or pasted
 * text, and `name`, is accepted too). Other properties are not rejected by the schema, so that a
 * private key sent by mistake gets the precise `private_key_not_accepted`.
 */
export const ClientCertificateUploadBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  certificatePem: Type.Optional(Type.String({ description: 'PEM certificate (the public part only)' })),
});

/** A CSR to sign. Other properties are ignored (a private key among them is refused). */
export const CsrBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  csrPem: Type.String({ minLength: 1, maxLength: 65_536, description: 'PKCS#10 CSR (RFC 2986), PEM' }),
  validityDays: Type.Optional(
    Type.Integer({ minimum: 1, description: 'default TWOWAY_CLIENT_CERT_ISSUE_VALIDITY_DAYS (365)' }),
  ),
});

export const RevokeBody = Type.Object(
  {
    reason: Type.Optional(
      Type.Union(
        ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'].map(
          (r) => Type.Literal(r),
        ),
        { description: 'CRL reason code (RFC 5280 §5.3.1); default unspecified' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ClientCertificateParams = Type.Object({
  tenant: Type.String({ maxLength: 63 }),
  id: Type.String({ maxLength: 64 }),
});
