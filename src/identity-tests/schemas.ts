import { Type } from '@sinclair/typebox';

/**
 * `POST .../identity-tests`, JSON form (multipart/form-data with the identity upload parts and the
 * text fields `url`, `identityId`, `password`, `trustAnchorsPem`, `timeoutMs` is accepted too).
 */
export const IdentityTestBody = Type.Object({
  url: Type.String({ maxLength: 8192, description: 'https URL to GET with the certificate' }),
  identityId: Type.Optional(Type.String({ description: 'test a stored identity (its active version)' })),
  pkcs12: Type.Optional(Type.String({ description: 'base64 PKCS#12 (.p12/.pfx)' })),
  password: Type.Optional(Type.String({ description: 'PKCS#12 or encrypted PKCS#8 password; never stored' })),
  certificatePem: Type.Optional(Type.String()),
  privateKeyPem: Type.Optional(Type.String()),
  chainPem: Type.Optional(Type.String()),
  trustAnchorsPem: Type.Optional(
    Type.String({
      maxLength: 1_048_576,
      description: 'CA certificates that verify the server (default: system roots)',
    }),
  ),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 100, description: 'at most the configured timeout' })),
});

const ChainEntry = Type.Object({
  subject: Type.String(),
  issuer: Type.String(),
  notAfter: Type.String(),
  fingerprintSha256: Type.String(),
});

export const IdentityTestReportSchema = Type.Object(
  {
    url: Type.String(),
    verdict: Type.Union(
      [
        'ok',
        'server_did_not_request_certificate',
        'server_rejected_certificate',
        'server_untrusted',
        'unreachable',
        'timeout',
        'handshake_failed',
        'certificate_invalid',
      ].map((v) => Type.Literal(v)),
    ),
    message: Type.String(),
    certificate: Type.Object({
      source: Type.Union([Type.Literal('upload'), Type.Literal('identity')]),
      identityId: Type.Optional(Type.String()),
      version: Type.Optional(Type.Integer()),
      ok: Type.Boolean(),
      summary: Type.Optional(
        Type.Object({
          subject: Type.String(),
          issuer: Type.String(),
          serialNumber: Type.String(),
          fingerprintSha256: Type.String(),
          notBefore: Type.String(),
          notAfter: Type.String(),
          keyType: Type.String(),
          keySize: Type.Optional(Type.Integer()),
          curve: Type.Optional(Type.String()),
          subjectAltNames: Type.Array(Type.String()),
          chain: Type.Array(ChainEntry),
        }),
      ),
      error: Type.Optional(
        Type.Object({
          code: Type.String({ description: 'an upload error code (docs/errors.md)' }),
          detail: Type.String(),
        }),
      ),
    }),
    connection: Type.Object({
      addresses: Type.Array(Type.String()),
      protocol: Type.Optional(Type.String()),
      cipher: Type.Optional(Type.String()),
    }),
    handshake: Type.Object({
      completed: Type.Boolean(),
      certificateRequested: Type.Union([Type.Boolean(), Type.Null()]),
      acceptableCaNames: Type.Union([Type.Array(Type.String()), Type.Null()], {
        description: 'CA names of the server CertificateRequest (RFC 4514)',
      }),
      clientCertificateSent: Type.Boolean(),
      error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    }),
    server: Type.Object({
      chain: Type.Array(
        Type.Object({
          subject: Type.String(),
          issuer: Type.String(),
          notBefore: Type.String(),
          notAfter: Type.String(),
          fingerprintSha256: Type.String(),
        }),
      ),
      trusted: Type.Union([Type.Boolean(), Type.Null()]),
      trustError: Type.Optional(Type.String()),
    }),
    http: Type.Union([
      Type.Object({
        status: Type.Integer(),
        headers: Type.Record(Type.String(), Type.String()),
        body: Type.String({ description: 'the first 1 KiB of the body, as UTF-8' }),
        truncated: Type.Boolean(),
      }),
      Type.Null(),
    ]),
    timingsMs: Type.Object({
      dns: Type.Optional(Type.Number()),
      tcp: Type.Optional(Type.Number()),
      tls: Type.Optional(Type.Number()),
      firstByte: Type.Optional(Type.Number()),
      total: Type.Number(),
    }),
  },
  { $id: 'IdentityTestReport' },
);
