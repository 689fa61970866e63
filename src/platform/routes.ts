import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { Collection, Literals, problemResponses } from '../http/schemas.js';
import { IdentityUploadBody } from '../identities/schemas.js';
import { activationOf, jsonUploadBodyLimit, readUpload, zeroUpload } from '../identities/upload.js';
import type { AuditNote } from '../lifecycle/audit.js';
import type { Principal } from '../tenants/service.js';
import { PLATFORM_TENANT, type PlatformIdentityService, type PlatformIssueRequest } from './service.js';

export interface PlatformRouteOptions {
  platform: PlatformIdentityService;
  maxUploadBytes: number;
}

/** `{ commonName, keyType? }`: Twoway makes the key and the platform outbound CA the certificate. */
const IssueRequest = Type.Object(
  {
    commonName: Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f]+$' }),
    keyType: Type.Optional(Literals(['EC', 'RSA', 'Ed25519'], { description: 'default EC (P-256)' })),
  },
  { additionalProperties: false },
);

/** The upload bodies of a tenant identity, or `issue`. */
const PlatformIdentityBody = Type.Object({
  ...IdentityUploadBody.properties,
  issue: Type.Optional(IssueRequest),
});

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const VersionParams = Type.Object({
  id: Type.String({ maxLength: 64 }),
  version: Type.Integer({ minimum: 1 }),
});

const PublishedSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      identityId: Type.String(),
      name: Type.String(),
      version: Type.Integer(),
      active: Type.Boolean({ description: 'false: the next certificate, published before it is presented' }),
      fingerprintSha256: Type.String(),
      notAfter: Type.String(),
      certificatePem: Type.String(),
    }),
  ),
  caPem: Type.String({ description: 'The platform outbound CA: issuing CA then root, PEM' }),
});

const created = {
  201: Type.Ref('Identity'),
  ...problemResponses,
  409: Type.Ref('Problem'),
  413: Type.Ref('Problem'),
  422: Type.Ref('Problem'),
};

/** The platform's identities are the operator's: anyone else gets 404, as for `POST /v1/tenants`. */
function requireOperator(principal: Principal): void {
  if (principal.kind !== 'operator')
    throw new AppError('not_found', 'Only the operator manages platform identities.');
}

/** The audit note of a change to a platform identity (recorded under the reserved tenant). */
function platformIdentityNote(
  action: string,
  identityId: string,
  detail: Record<string, unknown> = {},
): AuditNote {
  return { action, objectType: 'identity', objectId: identityId, tenantId: PLATFORM_TENANT, detail };
}

/**
 * `/v1/platform/identities` (operator token): the platform's own client identities, uploaded or
 * issued by the platform outbound CA; `/v1/platform/client-certificates` (no token): their public
 * certificates and the outbound CA chain, for customers to pin or trust.
 */
export const platformRoutes: FastifyPluginAsyncTypebox<PlatformRouteOptions> = async (app, options) => {
  const { platform, maxUploadBytes } = options;
  const bodyLimit = jsonUploadBodyLimit(maxUploadBytes);

  /** The identity source of a request: `issue`, or the upload (read, used, then zeroed). */
  const withSource = async <T>(
    request: FastifyRequest,
    work: (
      source: { upload: Parameters<PlatformIdentityService['create']>[1] },
      fields: { name?: string; activate?: boolean; activateAt?: string },
    ) => Promise<T>,
  ): Promise<T> => {
    if (request.validationError && !request.isMultipart())
      throw new AppError('bad_request', request.validationError.message);
    const body = (request.isMultipart() ? {} : (request.body ?? {})) as {
      issue?: PlatformIssueRequest;
      name?: string;
      activate?: boolean;
      activateAt?: string;
    };
    if (body.issue !== undefined) return work({ upload: { issue: body.issue } }, body);
    const parsed = await readUpload(request, maxUploadBytes);
    try {
      return await work({ upload: { upload: parsed.upload } }, parsed);
    } finally {
      zeroUpload(parsed.upload);
    }
  };

  const uploadSchema = (summary: string, params?: typeof IdParams) => ({
    bodyLimit,
    attachValidation: true,
    schema: {
      tags: ['platform'],
      summary,
      consumes: ['application/json', 'multipart/form-data'],
      ...(params ? { params } : {}),
      body: PlatformIdentityBody,
      response: created,
    },
  });

  app.post(
    '/v1/platform/identities',
    uploadSchema('Create a platform identity (operator): upload bodies as for a tenant identity, or issue'),
    async (request, reply) => {
      requireOperator(request.principal);
      const view = await withSource(request, (source, fields) =>
        platform.create(fields.name ?? 'platform', source.upload),
      );
      request.audit = platformIdentityNote('platform_identity.create', view.id, { name: view.name });
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/platform/identities',
    {
      schema: {
        tags: ['platform'],
        response: { 200: Collection(Type.Ref('Identity')), ...problemResponses },
      },
    },
    async (request) => {
      requireOperator(request.principal);
      return { items: await platform.list() };
    },
  );

  app.get(
    '/v1/platform/identities/:id',
    {
      schema: {
        tags: ['platform'],
        params: IdParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses },
      },
    },
    async (request) => {
      requireOperator(request.principal);
      return platform.get(request.params.id);
    },
  );

  app.post(
    '/v1/platform/identities/:id/versions',
    uploadSchema(
      'Rotate a platform identity (operator): a new version, uploaded or issued; activateAt publishes it first',
      IdParams,
    ),
    async (request, reply) => {
      requireOperator(request.principal);
      const { id } = request.params as { id: string };
      const view = await withSource(request, (source, fields) => {
        const activateAt = activationOf(fields);
        return platform.addVersion(
          id,
          source.upload,
          fields.activate ?? true,
          activateAt ? { activateAt } : {},
        );
      });
      request.audit = platformIdentityNote('platform_identity.version_add', id, {
        activeVersion: view.activeVersion,
      });
      return reply.code(201).send(view);
    },
  );

  app.post(
    '/v1/platform/identities/:id/versions/:version/activate',
    {
      schema: {
        tags: ['platform'],
        params: VersionParams,
        response: { 200: Type.Ref('Identity'), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request) => {
      requireOperator(request.principal);
      const view = await platform.activateVersion(request.params.id, request.params.version);
      request.audit = platformIdentityNote('platform_identity.activate', view.id, {
        version: request.params.version,
      });
      return view;
    },
  );

  app.get(
    '/v1/platform/client-certificates',
    {
      // Public material: what customers pin or trust, like the CA certificates of /v1/ca.
      config: { public: true },
      schema: {
        tags: ['platform'],
        summary: "The platform identities' active and next certificates and the outbound CA chain (no token)",
        security: [],
        response: { 200: PublishedSchema },
      },
    },
    async () => platform.publish(),
  );
};
