import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import { mappingCreated, mappingDeleted, mappingUpdated } from './audit.js';
import { CreateMappingBody, MappingParams, PatchMappingBody } from './schemas.js';
import type { MappingService } from './service.js';

const errors = { ...problemResponses, 422: Type.Ref('Problem') };
/** Create also answers `409 quota_exceeded` and `413 trust_anchors_too_large`. */
const createErrors = { ...errors, 409: Type.Ref('Problem'), 413: Type.Ref('Problem') };

/** `/v1/tenants/{tenant}/mappings`: create, list, get, patch, soft delete. */
export const mappingRoutes: FastifyPluginAsyncTypebox<{
  mappings: MappingService;
}> = async (app, { mappings }) => {
  app.post(
    '/v1/tenants/:tenant/mappings',
    {
      config: { permission: 'mappings:write' },
      schema: {
        tags: ['mappings'],
        summary: 'Map (service, URL) to an identity of this tenant',
        params: TenantParams,
        body: CreateMappingBody,
        response: { 201: Type.Ref('Mapping'), ...createErrors },
      },
    },
    async (request, reply) => {
      const view = await mappings.create(request.params.tenant, request.body);
      request.audit = mappingCreated(view);
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/tenants/:tenant/mappings',
    {
      config: { permission: 'mappings:read' },
      schema: {
        tags: ['mappings'],
        summary:
          'List mappings, oldest first (deleted ones too with includeDeleted); page with limit and cursor',
        params: TenantParams,
        querystring: Type.Object({
          ...PageQuery.properties,
          includeDeleted: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Collection(Type.Ref('Mapping')), ...problemResponses },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      return mappings.list(tenant, pageRequest(request.query), request.query.includeDeleted ?? false);
    },
  );

  app.get(
    '/v1/tenants/:tenant/mappings/:id',
    {
      config: { permission: 'mappings:read' },
      schema: {
        tags: ['mappings'],
        params: MappingParams,
        response: { 200: Type.Ref('Mapping'), ...problemResponses },
      },
    },
    async (request) => {
      return mappings.get(request.params.tenant, request.params.id);
    },
  );

  app.patch(
    '/v1/tenants/:tenant/mappings/:id',
    {
      config: { permission: 'mappings:write' },
      schema: {
        tags: ['mappings'],
        params: MappingParams,
        body: PatchMappingBody,
        response: { 200: Type.Ref('Mapping'), ...errors, 413: Type.Ref('Problem') },
      },
    },
    async (request) => {
      const view = await mappings.update(request.params.tenant, request.params.id, request.body);
      request.audit = mappingUpdated(view, Object.keys(request.body));
      return view;
    },
  );

  app.delete(
    '/v1/tenants/:tenant/mappings/:id',
    {
      config: { permission: 'mappings:write' },
      schema: {
        tags: ['mappings'],
        summary: 'Soft delete: deleted: true, no longer matches',
        params: MappingParams,
        response: { 200: Type.Ref('Mapping'), ...problemResponses },
      },
    },
    async (request) => {
      const view = await mappings.remove(request.params.tenant, request.params.id);
      request.audit = mappingDeleted(view.id);
      return view;
    },
  );
};
