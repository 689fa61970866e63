import { Type } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';

export const VersionSchema = Type.Object({
  version: Type.Integer(),
  subject: Type.String(),
  issuer: Type.String(),
  serialNumber: Type.String(),
  fingerprintSha256: Type.String({ description: 'SHA-256 of the DER certificate, lowercase hex' }),
  spkiSha256: Type.String({ description: 'SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex' }),
  notBefore: Timestamp,
  notAfter: Timestamp,
  keyType: Type.Union([Type.Literal('RSA'), Type.Literal('EC'), Type.Literal('Ed25519')]),
  keySize: Type.Optional(Type.Integer({ description: 'bits' })),
  curve: Type.Optional(Type.String()),
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

export const IdentitySchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String(),
    name: Type.String(),
    status: Type.Union(['active', 'expiring', 'expired', 'disabled'].map((s) => Type.Literal(s))),
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
