import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TSchema, Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import {
  activationCancelled,
  identityCreated,
  identityDeleted,
  identityUpdated,
  versionActivated,
  versionAdded,
} from './audit.js';
import { IdentityParams, IdentityUploadBody, VersionParams } from './schemas.js';
import type { IdentityService } from './service.js';
import { jsonUploadBodyLimit, type ParsedUpload, readUpload, zeroUpload } from './upload.js';

export interface IdentityRouteOptions {
  identities: IdentityService;
  maxUploadBytes: number;
}

const uploadResponses = {
  201: Type.Ref('Identity'),
  ...problemResponses,
  409: Type.Ref('Problem'),
  413: Type.Ref('Problem'),
  422: Type.Ref('Problem'),
  429: Type.Ref('Problem'),
};

/** `/v1/tenants/{tenant}/identities`: upload, list, get, delete, versions, activation. */
export const identityRoutes: FastifyPluginAsyncTypebox<IdentityRouteOptions> = async (app, options) => {
  const { identities, maxUploadBytes } = options;
  const bodyLimit = jsonUploadBodyLimit(maxUploadBytes);

  /** Options shared by the two upload routes (JSON or multipart body, validated by hand for JSON). */
  const uploadRoute = <P extends TSchema>(summary: string, params: P) => ({
    config: { permission: 'identities:write' as const },
    bodyLimit,
    attachValidation: true,
    schema: {
      tags: ['identities'],
      summary,
      consumes: ['application/json', 'multipart/form-data'],
      params,
      body: IdentityUploadBody,
      response: uploadResponses,
    },
  });

  /** Reads the upload, runs `work`, and zeroes the uploaded bytes whatever happens. */
  const withUpload = async <T>(
    request: FastifyRequest,
    work: (parsed: ParsedUpload) => Promise<T>,
  ): Promise<T> => {
    if (request.validationError && !request.isMultipart()) {
      throw new AppError('bad_request', request.validationError.message);
    }
    const parsed = await readUpload(request, maxUploadBytes);
    try {
      return await work(parsed);
    } finally {
      zeroUpload(parsed.upload);
    }
  };

  app.post(
    '/v1/tenants/:tenant/identities',
    uploadRoute('Upload an identity (PKCS#12 + password, or PEM certificate + key + chain)', TenantParams),
    async (request, reply) => {
      const view = await withUpload(request, (parsed) =>
        identities.importIdentity(request.params.tenant, parsed.name ?? 'identity', parsed.upload),
      );
      request.audit = identityCreated(view);
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/tenants/:tenant/identities',
    {
      config: { permission: 'identities:read' },
      schema: {
        tags: ['identities'],
        summary: 'List identities with their versions, oldest first; page with limit and cursor',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(Type.Ref('Identity')), ...problemResponses },
      },
    },
    async (request) => {
      return identities.list(request.params.tenant, pageRequest(request.query));
    },
  );

  app.get(
    '/v1/tenants/:tenant/identities/:id',
    {
      config: { permission: 'identities:read' },
      schema: {
        tags: ['identities'],
        params: IdentityParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses },
      },
    },
    async (request) => {
      return identities.get(request.params.tenant, request.params.id);
    },
  );

  app.patch(
    '/v1/tenants/:tenant/identities/:id',
    {
      config: { permission: 'identities:write' },
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
      const view = await identities.updateIdentity(request.params.tenant, request.params.id, request.body);
      request.audit = identityUpdated(view, request.body);
      return view;
    },
  );

  app.delete(
    '/v1/tenants/:tenant/identities/:id',
    {
      config: { permission: 'identities:write' },
      schema: {
        tags: ['identities'],
        summary: 'Soft-delete an identity (409 identity_in_use while an enabled mapping uses it)',
        params: IdentityParams,
        response: { 204: Type.Null(), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      await identities.deleteIdentity(request.params.tenant, request.params.id);
      request.audit = identityDeleted(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/tenants/:tenant/identities/:id/versions',
    uploadRoute(
      'Upload a new version (rotation); activated at once unless activate is false',
      IdentityParams,
    ),
    async (request, reply) => {
      const { before, view } = await withUpload(request, async (parsed) => {
        let activateAt: Date | undefined;
        if (parsed.activateAt !== undefined) {
          activateAt = new Date(parsed.activateAt);
          if (Number.isNaN(activateAt.getTime()) || !/^\d{4}-\d\d-\d\dT/.test(parsed.activateAt))
            throw new AppError('bad_request', 'activateAt must be an RFC 3339 date-time.');
          if (parsed.activate === true)
            throw new AppError('bad_request', 'Send either activate: true or activateAt, not both.');
        }
        const before = await identities.get(request.params.tenant, request.params.id);
        const view = await identities.addVersion(
          request.params.tenant,
          request.params.id,
          parsed.upload,
          parsed.activate ?? true,
          activateAt ? { activateAt } : {},
        );
        return { before, view };
      });
      request.audit = versionAdded(before, view);
      return reply.code(201).send(view);
    },
  );

  app.post(
    '/v1/tenants/:tenant/identities/:id/versions/:version/activate',
    {
      config: { permission: 'identities:write' },
      schema: {
        tags: ['identities'],
        summary: 'Activate a version (roll forward or back); the next request uses it',
        params: VersionParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request) => {
      const before = await identities.get(request.params.tenant, request.params.id);
      const view = await identities.activateVersion(
        request.params.tenant,
        request.params.id,
        request.params.version,
      );
      request.audit = versionActivated(view, request.params.version, before.activeVersion);
      return view;
    },
  );

  app.delete(
    '/v1/tenants/:tenant/identities/:id/versions/:version/activate-at',
    {
      config: { permission: 'identities:write' },
      schema: {
        tags: ['identities'],
        summary: 'Cancel the scheduled activation of a version (uploaded with activateAt)',
        params: VersionParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses },
      },
    },
    async (request) => {
      const view = await identities.cancelScheduledActivation(
        request.params.tenant,
        request.params.id,
        request.params.version,
      );
      request.audit = activationCancelled(view.id, request.params.version);
      return view;
    },
  );
};
