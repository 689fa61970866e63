import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import type { RevocationReason } from '../store/index.js';
import type { Principal } from '../tenants/service.js';
import type { CsrApprovalService } from './approval.js';
import {
  clientCertificateDeleted,
  clientCertificateIssued,
  clientCertificateRegistered,
  clientCertificateRevoked,
  csrDecided,
  csrSubmitted,
} from './audit.js';
import {
  ClientCertificateParams,
  ClientCertificateUploadBody,
  CsrBody,
  CsrRequestParams,
  RejectCsrBody,
  RevokeBody,
} from './schemas.js';
import type { ClientCertificateService } from './service.js';
import { readClientCertificateUpload, refuseSecrets } from './upload.js';

export interface ClientCertificateRouteOptions {
  clientCertificates: ClientCertificateService;
  /** CSR submission with the optional approval step (TWOWAY_CSR_APPROVAL). */
  approvals: CsrApprovalService;
  maxUploadBytes: number;
}

/** Deciding a CSR is the operator's: a tenant's key (its own tenant) gets `403 operator_only`. */
function requireOperator(principal: Principal): void {
  if (principal.kind !== 'operator') {
    throw new AppError(
      'operator_only',
      'Only the operator approves or rejects certificate signing requests.',
    );
  }
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
  const { clientCertificates, approvals, maxUploadBytes } = options;
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
        response: {
          201: Type.Ref('IssuedClientCertificate'),
          202: Type.Ref('CsrRequest'),
          ...createdResponses,
        },
      },
    },
    async (request, reply) => {
      refuseSecrets(request.body);
      if (request.validationError) throw new AppError('bad_request', request.validationError.message);
      const { name, csrPem, validityDays } = request.body;
      const outcome = await approvals.submit(
        request.params.tenant,
        name ?? 'client certificate',
        csrPem,
        validityDays,
      );
      if (outcome.status === 'pending') {
        request.audit = csrSubmitted(outcome.request);
        return reply.code(202).send(outcome.request);
      }
      request.audit = clientCertificateIssued(outcome.certificate);
      return reply.code(201).send(outcome.certificate);
    },
  );

  app.get(
    '/v1/tenants/:tenant/certificate-signing-requests/:id',
    {
      config: { permission: 'client-certificates:read' },
      schema: {
        tags: ['client certificates'],
        summary: 'A CSR waiting for the operator (TWOWAY_CSR_APPROVAL=manual), or its decision',
        params: CsrRequestParams,
        response: { 200: Type.Ref('CsrRequest'), ...problemResponses },
      },
    },
    async (request) => approvals.get(request.params.tenant, request.params.id),
  );

  app.post(
    '/v1/tenants/:tenant/certificate-signing-requests/:id/approve',
    {
      // The operator's alone (requireOperator); the operator holds every permission.
      config: { permission: 'client-certificates:write' },
      schema: {
        tags: ['client certificates'],
        summary: 'Approve a pending CSR (operator token): the certificate is issued, the tenant notified',
        params: CsrRequestParams,
        response: { 200: Type.Ref('IssuedClientCertificate'), ...createdResponses },
      },
    },
    async (request) => {
      requireOperator(request.principal);
      const { request: decided, certificate } = await approvals.approve(
        request.params.tenant,
        request.params.id,
      );
      request.audit = csrDecided(decided);
      return certificate;
    },
  );

  app.post(
    '/v1/tenants/:tenant/certificate-signing-requests/:id/reject',
    {
      config: { permission: 'client-certificates:write' },
      // The body (a reason) is optional.
      attachValidation: true,
      schema: {
        tags: ['client certificates'],
        summary: 'Reject a pending CSR (operator token): nothing is issued, the tenant is notified',
        params: CsrRequestParams,
        body: RejectCsrBody,
        response: { 200: Type.Ref('CsrRequest'), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request) => {
      if (request.validationError && request.body !== undefined && request.body !== null) {
        throw new AppError('bad_request', request.validationError.message);
      }
      requireOperator(request.principal);
      const decided = await approvals.reject(request.params.tenant, request.params.id, request.body?.reason);
      request.audit = csrDecided(decided);
      return decided;
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
