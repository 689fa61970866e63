import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import type { TenantService } from '../tenants/service.js';
import { CreateMappingBody, MappingParams, PatchMappingBody } from './schemas.js';
import type { MappingService } from './service.js';

const errors = { ...problemResponses, 422: Type.Ref('Problem') };

/** `/v1/tenants/{tenant}/mappings`: create, list, get, patch, soft delete. */
export const mappingRoutes: FastifyPluginAsyncTypebox<{
  tenants: TenantService;
  mappings: MappingService;
}> = async (app, { tenants, mappings }) => {
  app.post(
    '/v1/tenants/:tenant/mappings',
    {
      schema: {
        tags: ['mappings'],
        summary: 'Map (service, URL) to an identity of this tenant',
        params: TenantParams,
        body: CreateMappingBody,
        response: { 201: Type.Ref('Mapping'), ...errors },
      },
    },
    async (request, reply) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return reply.code(201).send(await mappings.create(request.params.tenant, request.body));
    },
  );

  app.get(
    '/v1/tenants/:tenant/mappings',
    {
      schema: {
        tags: ['mappings'],
        params: TenantParams,
        querystring: Type.Object({ includeDeleted: Type.Optional(Type.Boolean()) }),
        response: { 200: Collection(Type.Ref('Mapping')), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return { items: await mappings.list(request.params.tenant, request.query.includeDeleted ?? false) };
    },
  );

  app.get(
    '/v1/tenants/:tenant/mappings/:id',
    {
      schema: {
        tags: ['mappings'],
        params: MappingParams,
        response: { 200: Type.Ref('Mapping'), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return mappings.get(request.params.tenant, request.params.id);
    },
  );

  app.patch(
    '/v1/tenants/:tenant/mappings/:id',
    {
      schema: {
        tags: ['mappings'],
        params: MappingParams,
        body: PatchMappingBody,
        response: { 200: Type.Ref('Mapping'), ...errors },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return mappings.update(request.params.tenant, request.params.id, request.body);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/mappings/:id',
    {
      schema: {
        tags: ['mappings'],
        summary: 'Soft delete: deleted: true, no longer matches',
        params: MappingParams,
        response: { 200: Type.Ref('Mapping'), ...problemResponses },
      },
    },
    async (request) => {
      await tenants.authorize(request.principal, request.params.tenant);
      return mappings.remove(request.params.tenant, request.params.id);
    },
  );
};
