import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OcspResponder } from './ocsp.js';
import type { PlatformCa } from './platform-ca.js';

export interface CaRouteOptions {
  ca: PlatformCa;
  ocsp: OcspResponder;
}

/** Largest OCSP request body accepted (a request for 20 certificates with a nonce is under 2 KiB). */
const MAX_OCSP_REQUEST_BYTES = 16 * 1024;

const OcspResponseSchema = {
  description:
    'application/ocsp-response (RFC 6960 Appendix A.1), DER OCSPResponse; a request that does not ' +
    'decode gets the malformedRequest status, still with HTTP 200',
  content: { 'application/ocsp-response': { schema: Type.String({ format: 'binary' }) } },
};

/**
 * `GET /v1/ca/certificates` and `GET /v1/ca/crl`: public, no token. Both are public material by
 * design: the CA certificates are the trust anchors clients install to verify the edge and issued
 * certificates, and a CRL is signed and meant to be fetched by any relying party (RFC 5280 §5 and
 * the CRL distribution points of §4.2.1.13 are fetched without credentials). Nothing tenant-specific
 * is in either: a CRL lists serial numbers and revocation dates only. The OCSP responder
 * (`GET /v1/ca/ocsp/{base64 request}`, `POST /v1/ca/ocsp`, RFC 6960 Appendix A.1) is public for the
 * same reason: it answers only whether a serial number is revoked.
 */
export const caRoutes: FastifyPluginAsyncTypebox<CaRouteOptions> = async (app, options) => {
  const { ca, ocsp } = options;

  /** Answers with a DER OCSPResponse; a failure of the store or the key is `internalError`. */
  const answerOcsp = async (request: FastifyRequest, reply: FastifyReply, der: Uint8Array) => {
    let body: Buffer;
    try {
      body = await ocsp.respond(der);
    } catch (err) {
      request.log.error({ err }, 'OCSP response failed');
      body = OcspResponder.internalError();
    }
    return reply.type('application/ocsp-response').send(body);
  };

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

  app.get(
    '/v1/ca/ocsp/*',
    {
      config: { public: true },
      schema: {
        tags: ['platform CA'],
        summary: 'OCSP (RFC 6960) by GET: the path is the base64 of a DER OCSPRequest (public)',
        security: [],
        response: { 200: OcspResponseSchema },
      },
    },
    async (request, reply) => {
      // RFC 6960 A.1: url-encoding of base64; Fastify has percent-decoded it. base64url is read too.
      const encoded = (request.params as { '*': string })['*'];
      const der = Buffer.from(encoded, 'base64');
      // Cacheable by intermediaries (RFC 5019 §5): a GET request carries no nonce of its own choice.
      reply.header('cache-control', 'public, max-age=60');
      return answerOcsp(request, reply as unknown as FastifyReply, der);
    },
  );

  await app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/ocsp-request',
      { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST_BYTES },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      '/v1/ca/ocsp',
      {
        config: { public: true },
        schema: {
          tags: ['platform CA'],
          summary: 'OCSP (RFC 6960) by POST: body application/ocsp-request, a DER OCSPRequest (public)',
          security: [],
          response: { 200: OcspResponseSchema },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return answerOcsp(request, reply as unknown as FastifyReply, request.body as Buffer);
      },
    );
  });
};
