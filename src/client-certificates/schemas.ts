import { Type } from '@sinclair/typebox';
import { CertificateFacts } from '../http/certificate-facts.js';
import { Literals, Timestamp } from '../http/schemas.js';

const ClientCertificateProperties = {
  id: Type.String(),
  tenant: Type.String(),
  name: Type.String(),
  source: Literals(['uploaded', 'issued']),
  status: Literals(['active', 'expiring', 'expired', 'revoked']),
  ...CertificateFacts,
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

/** A CSR under `TWOWAY_CSR_APPROVAL=manual`: pending, approved (with its certificate) or rejected. */
export const CsrRequestSchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String(),
    name: Type.String(),
    status: Literals(['pending', 'approved', 'rejected']),
    subject: Type.String({ description: 'RFC 4514 subject of the CSR' }),
    csrPem: Type.String({ description: 'The CSR as submitted (public material)' }),
    validityDays: Type.Optional(Type.Integer()),
    createdAt: Timestamp,
    decidedAt: Type.Optional(Timestamp),
    reason: Type.Optional(Type.String({ description: "The operator's reason for a rejection" })),
    clientCertificateId: Type.Optional(Type.String({ description: 'The certificate issued on approval' })),
  },
  { $id: 'CsrRequest' },
);

/** The operator's rejection; the reason is sent to the tenant. */
export const RejectCsrBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) },
  { additionalProperties: false },
);

export const CsrRequestParams = Type.Object({
  tenant: Type.String({ maxLength: 63 }),
  id: Type.String({ maxLength: 64 }),
});
