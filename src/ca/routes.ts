import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { PlatformCa } from './platform-ca.js';

export interface CaRouteOptions {
  ca: PlatformCa;
}

/**
 * `GET /v1/ca/certificates` and `GET /v1/ca/crl`: public, no token. Both are public material by
 * design: the CA certificates are the trust anchors clients install to verify the edge and issued
 * certificates, and a CRL is signed and meant to be fetched by any relying party (RFC 5280 §5 and
 * the CRL distribution points of §4.2.1.13 are fetched without credentials). Nothing tenant-specific
 * is in either: a CRL lists serial numbers and revocation dates only.
 */
export const caRoutes: FastifyPluginAsyncTypebox<CaRouteOptions> = async (app, options) => {
  const { ca } = options;

  app.get(
    '/v1/ca/certificates',
    {
      config: { public: true },
      schema: {
        tags: ['platform CA'],
        summary: 'The platform CA chain: issuing CA then root, PEM (public)',
        security: [],
        response: {
          200: {
            description: 'application/pem-certificate-chain (RFC 8555 §9.1)',
            content: { 'application/pem-certificate-chain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      reply.type('application/pem-certificate-chain').header('cache-control', 'public, max-age=3600');
      return ca.chainPem();
    },
  );

  app.get(
    '/v1/ca/crl',
    {
      config: { public: true },
      schema: {
        tags: ['platform CA'],
        summary: 'The CRL of the issuing CA, DER (public); remade on every revocation',
        security: [],
        response: {
          200: {
            description: 'application/pkix-crl (RFC 2585 §4.2), DER (RFC 5280 §5)',
            content: { 'application/pkix-crl': { schema: Type.String({ format: 'binary' }) } },
          },
        },
      },
    },
    async (_request, reply) => {
      // Short caching: a revocation must reach relying parties soon.
      const der = await ca.crlDer();
      // The reply's payload type follows the documented schema (a string); the body is the DER Buffer.
      const untyped = reply as unknown as FastifyReply;
      return untyped.type('application/pkix-crl').header('cache-control', 'public, max-age=60').send(der);
    },
  );
};
