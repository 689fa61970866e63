import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import type { RevocationReason } from '../store/index.js';
import {
  clientCertificateDeleted,
  clientCertificateIssued,
  clientCertificateRegistered,
  clientCertificateRevoked,
} from './audit.js';
import { ClientCertificateParams, ClientCertificateUploadBody, CsrBody, RevokeBody } from './schemas.js';
import type { ClientCertificateService } from './service.js';
import { readClientCertificateUpload, refuseSecrets } from './upload.js';

export interface ClientCertificateRouteOptions {
  clientCertificates: ClientCertificateService;
  maxUploadBytes: number;
}

const createdResponses = {
  ...problemResponses,
  409: Type.Ref('Problem'),
  413: Type.Ref('Problem'),
  422: Type.Ref('Problem'),
};

/**
 * `/v1/tenants/{tenant}/client-certificates` (register, list, get, revoke, delete) and
 * `/v1/tenants/{tenant}/certificate-signing-requests` (issue from a CSR). Another tenant's objects
 * are `404`, as everywhere.
 */
export const clientCertificateRoutes: FastifyPluginAsyncTypebox<ClientCertificateRouteOptions> = async (
  app,
  options,
) => {
  const { clientCertificates, maxUploadBytes } = options;
  const bodyLimit = maxUploadBytes * 2 + 64 * 1024;

  app.post(
    '/v1/tenants/:tenant/client-certificates',
    {
      config: { permission: 'client-certificates:write' },
      bodyLimit,
      attachValidation: true,
      schema: {
        tags: ['client certificates'],
        summary: 'Register a client certificate (public certificate only, PEM or DER; BYOC)',
        description:
          'multipart/form-data with `file` (PEM or DER file, or pasted PEM) and `name`, or JSON ' +
          '`{ name, certificatePem }`. A private key anywhere in the request is refused with ' +
          '`private_key_not_accepted` and nothing of it is kept.',
        consumes: ['application/json', 'multipart/form-data'],
        params: TenantParams,
        body: ClientCertificateUploadBody,
        response: { 201: Type.Ref('ClientCertificate'), ...createdResponses },
      },
    },
    async (request, reply) => {
      // Keys first: a body with a key gets the precise refusal whatever else is wrong with it.
      if (!request.isMultipart()) refuseSecrets(request.body);
      if (request.validationError && !request.isMultipart()) {
        throw new AppError('bad_request', request.validationError.message);
      }
      const upload = await readClientCertificateUpload(request, maxUploadBytes);
      const view = await clientCertificates.register(
        request.params.tenant,
        upload.name ?? 'client certificate',
        upload.certificate,
      );
      upload.certificate.fill(0);
      request.audit = clientCertificateRegistered(view);
      return reply.code(201).send(view);
    },
  );

  app.post(
    '/v1/tenants/:tenant/certificate-signing-requests',
    {
      config: { permission: 'client-certificates:write' },
      bodyLimit: 128 * 1024,
      attachValidation: true,
      schema: {
        tags: ['client certificates'],
        summary: 'Issue a client certificate from a CSR with the platform CA',
        description:
          'Verifies the CSR signature (RFC 2986) and key policy, and issues a certificate with the ' +
          'clientAuth EKU and the URI SAN `urn:twoway:tenant:<tenant>`, valid `validityDays` (default ' +
          '365). The answer holds the certificate and its chain (issuing CA, root).',
        params: TenantParams,
        body: CsrBody,
        response: { 201: Type.Ref('IssuedClientCertificate'), ...createdResponses },
      },
    },
    async (request, reply) => {
      refuseSecrets(request.body);
      if (request.validationError) throw new AppError('bad_request', request.validationError.message);
      const { name, csrPem, validityDays } = request.body;
      const view = await clientCertificates.issue(
        request.params.tenant,
        name ?? 'client certificate',
        Buffer.from(csrPem, 'utf8'),
        validityDays,
      );
      request.audit = clientCertificateIssued(view);
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/tenants/:tenant/client-certificates',
    {
      config: { permission: 'client-certificates:read' },
      schema: {
        tags: ['client certificates'],
        summary: 'List client certificates (not deleted), oldest first; page with limit and cursor',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(Type.Ref('ClientCertificate')), ...problemResponses },
      },
    },
    async (request) => {
      return clientCertificates.list(request.params.tenant, pageRequest(request.query));
    },
  );

  app.get(
    '/v1/tenants/:tenant/client-certificates/:id',
    {
      config: { permission: 'client-certificates:read' },
      schema: {
        tags: ['client certificates'],
        params: ClientCertificateParams,
        response: { 200: Type.Ref('ClientCertificate'), ...problemResponses },
      },
    },
    async (request) => {
      return clientCertificates.get(request.params.tenant, request.params.id);
    },
  );

  app.post(
    '/v1/tenants/:tenant/client-certificates/:id/revoke',
    {
      config: { permission: 'client-certificates:write' },
      // The body is optional; without one the schema would refuse `undefined`.
      attachValidation: true,
      schema: {
        tags: ['client certificates'],
        summary: 'Revoke: the edge refuses it at once (new handshakes and open connections); CRL updated',
        params: ClientCertificateParams,
        body: RevokeBody,
        response: { 200: Type.Ref('ClientCertificate'), ...problemResponses },
      },
    },
    async (request) => {
      if (request.validationError && request.body !== undefined && request.body !== null) {
        throw new AppError('bad_request', request.validationError.message);
      }
      const reason = (request.body?.reason ?? 'unspecified') as RevocationReason;
      const view = await clientCertificates.revoke(request.params.tenant, request.params.id, reason);
      request.audit = clientCertificateRevoked(view, reason);
      return view;
    },
  );

  app.delete(
    '/v1/tenants/:tenant/client-certificates/:id',
    {
      config: { permission: 'client-certificates:write' },
      schema: {
        tags: ['client certificates'],
        summary: 'Delete: the edge refuses it at once; an issued certificate is revoked first',
        params: ClientCertificateParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await clientCertificates.delete(request.params.tenant, request.params.id);
      request.audit = clientCertificateDeleted(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
