import { Type } from '@sinclair/typebox';
import { CertificateFacts } from '../http/certificate-facts.js';
import { Literals, Timestamp } from '../http/schemas.js';

/** One version as the API shows it (API.md "Version"). */
export const VersionSchema = Type.Object({
  version: Type.Integer(),
  ...CertificateFacts,
  signatureAlgorithm: Type.String(),
  subjectAltNames: Type.Array(Type.String()),
  chain: Type.Array(
    Type.Object({
      subject: Type.String(),
      issuer: Type.String(),
      notAfter: Timestamp,
      fingerprintSha256: Type.String(),
    }),
  ),
  createdAt: Timestamp,
  activatedAt: Type.Optional(Timestamp),
  activateAt: Type.Optional({ ...Timestamp, description: 'When the scheduler will activate this version' }),
});

/** An identity as the API shows it (API.md "Identity"); never any key material. */
export const IdentitySchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String(),
    name: Type.String(),
    status: Literals(['active', 'expiring', 'expired', 'disabled']),
    activeVersion: Type.Integer(),
    versions: Type.Array(VersionSchema),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Identity' },
);

/**
 * JSON upload (documented; multipart/form-data with `file` or `certificate` + `privateKey` +
 * `chain`, and fields `password`, `name`, `activate`, is accepted too).
 */
export const IdentityUploadBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  pkcs12: Type.Optional(Type.String({ description: 'base64 PKCS#12 (.p12/.pfx)' })),
  password: Type.Optional(Type.String({ description: 'PKCS#12 or encrypted PKCS#8 password; never stored' })),
  certificatePem: Type.Optional(Type.String()),
  privateKeyPem: Type.Optional(Type.String()),
  chainPem: Type.Optional(Type.String()),
  activate: Type.Optional(Type.Boolean({ description: 'versions only; default true' })),
  activateAt: Type.Optional({
    ...Timestamp,
    description: 'versions only: activate at this instant (RFC 3339) instead of now (scheduled rotation)',
  }),
});

export const IdentityParams = Type.Object({ tenant: Type.String(), id: Type.String() });
export const VersionParams = Type.Object({
  tenant: Type.String(),
  id: Type.String(),
  version: Type.Integer({ minimum: 1 }),
});
