import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import type { TenantService } from '../tenants/service.js';
import { IdentityParams, IdentityUploadBody, VersionParams } from './schemas.js';
import type { IdentityService } from './service.js';
import { jsonUploadBodyLimit, readUpload } from './upload.js';

export interface IdentityRouteOptions {
  tenants: TenantService;
  identities: IdentityService;
  maxUploadBytes: number;
}

const uploadResponses = {
  201: Type.Ref('Identity'),
  ...problemResponses,
  409: Type.Ref('Problem'),
  413: Type.Ref('Problem'),
  422: Type.Ref('Problem'),
};

/** `/v1/tenants/{tenant}/identities`: upload, list, get, delete, versions, activation. */
export const identityRoutes: FastifyPluginAsyncTypebox<IdentityRouteOptions> = async (app, options) => {
  const { tenants, identities, maxUploadBytes } = options;
  const bodyLimit = jsonUploadBodyLimit(maxUploadBytes);

  app.post(
    '/v1/tenants/:tenant/identities',
    {
      bodyLimit,
      attachValidation: true,
      schema: {
        tags: ['identities'],
        summary: 'Upload an identity (PKCS#12 + password, or PEM certificate + key + chain)',
        consumes: ['application/json', 'multipart/form-data'],
        params: TenantParams,
        body: IdentityUploadBody,
        response: uploadResponses,
      },
    },
    async (request, reply) => {
      await tenants.authorize(request.principal, request.params.tenant);
      if (request.validationError && !request.isMultipart())
        throw new AppError('bad_request', request.validationError.message);
      const parsed = await readUpload(request, maxUploadBytes);
      const view = await identities.importIdentity(
        request.params.tenant,
        parsed.name ?? 'identity',
        parsed.upload,
      );
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/tenants/:tenant/identities',
    {
      schema: {
        tags: ['identities'],
        params: TenantParams,
        response: { 200: Collection(Type.Ref('Identity')), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return { items: await identities.list(request.params.tenant) };
    },
  );

  app.get(
    '/v1/tenants/:tenant/identities/:id',
    {
      schema: {
        tags: ['identities'],
        params: IdentityParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return identities.get(request.params.tenant, request.params.id);
    },
  );

  app.patch(
    '/v1/tenants/:tenant/identities/:id',
    {
      schema: {
        tags: ['identities'],
        summary: 'Rename, disable or re-enable an identity (a disabled one is never presented)',
        params: IdentityParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            disabled: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Ref('Identity'), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return identities.updateIdentity(request.params.tenant, request.params.id, request.body);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/identities/:id',
    {
      schema: {
        tags: ['identities'],
        summary: 'Soft-delete an identity (409 identity_in_use while an enabled mapping uses it)',
        params: IdentityParams,
        response: { 204: Type.Null(), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      await tenants.authorize(request.principal, request.params.tenant);
      await identities.deleteIdentity(request.params.tenant, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/tenants/:tenant/identities/:id/versions',
    {
      bodyLimit,
      attachValidation: true,
      schema: {
        tags: ['identities'],
        summary: 'Upload a new version (rotation); activated at once unless activate is false',
        consumes: ['application/json', 'multipart/form-data'],
        params: IdentityParams,
        body: IdentityUploadBody,
        response: uploadResponses,
      },
    },
    async (request, reply) => {
      await tenants.authorize(request.principal, request.params.tenant);
      if (request.validationError && !request.isMultipart())
        throw new AppError('bad_request', request.validationError.message);
      const parsed = await readUpload(request, maxUploadBytes);
      const view = await identities.addVersion(
        request.params.tenant,
        request.params.id,
        parsed.upload,
        parsed.activate ?? true,
      );
      return reply.code(201).send(view);
    },
  );

  app.post(
    '/v1/tenants/:tenant/identities/:id/versions/:version/activate',
    {
      schema: {
        tags: ['identities'],
        summary: 'Activate a version (roll forward or back); the next request uses it',
        params: VersionParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return identities.activateVersion(request.params.tenant, request.params.id, request.params.version);
    },
  );
};
