import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { apiKeyCreated, apiKeyRevoked, tenantCreated, tenantUpdated } from './audit.js';
import {
  ApiKeySchema,
  CreatedTenantSchema,
  CreateTenantBody,
  PatchTenantBody,
  TenantSchema,
} from './schemas.js';
import type { TenantService } from './service.js';

/** `/v1/tenants`: create (operator token) and list (the operator's every tenant, a key's own). */
export const tenantListRoutes: FastifyPluginAsyncTypebox<{ tenants: TenantService }> = async (
  app,
  { tenants },
) => {
  app.post(
    '/v1/tenants',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant (operator token)',
        body: CreateTenantBody,
        response: { 201: CreatedTenantSchema, ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      if (request.principal.kind !== 'operator')
        throw new AppError('not_found', 'Only the operator creates tenants.');
      const { tenant, apiKey, keyId } = await tenants.createTenant(request.body.id, request.body.name);
      request.audit = tenantCreated(tenant, keyId);
      return reply.code(201).send({ ...tenant, createdAt: tenant.createdAt.toISOString(), apiKey });
    },
  );

  app.get(
    '/v1/tenants',
    {
      schema: {
        tags: ['tenants'],
        summary: 'List tenants (operator token)',
        response: { 200: Collection(TenantSchema) },
      },
    },
    async (request) => {
      if (request.principal.kind !== 'operator') {
        const own = await tenants.authorize(request.principal, request.principal.tenantId);
        return { items: [{ ...own, createdAt: own.createdAt.toISOString() }] };
      }
      const items = await tenants.listTenants();
      return { items: items.map((t) => ({ ...t, createdAt: t.createdAt.toISOString() })) };
    },
  );
};

/**
 * `/v1/tenants/{tenant}` and its API keys; registered in the tenant scope (http/tenant-scope.ts),
 * which authorises the tenant.
 */
export const tenantRoutes: FastifyPluginAsyncTypebox<{ tenants: TenantService }> = async (
  app,
  { tenants },
) => {
  app.get(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['tenants'],
        params: TenantParams,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenant = await tenants.getTenant(request.params.tenant);
      if (!tenant) throw new AppError('not_found', 'No such tenant.');
      return { ...tenant, createdAt: tenant.createdAt.toISOString() };
    },
  );

  app.patch(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['tenants'],
        summary: "Set the tenant's default identity (used on the next request)",
        params: TenantParams,
        body: PatchTenantBody,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      let tenant = await tenants.getTenant(request.params.tenant);
      if (!tenant) throw new AppError('not_found', 'No such tenant.');
      const { defaultIdentityId } = request.body;
      if (defaultIdentityId !== undefined) {
        tenant = await tenants.setDefaultIdentity(request.params.tenant, defaultIdentityId);
        request.audit = tenantUpdated(tenant.id, { defaultIdentityId });
      }
      return { ...tenant, createdAt: tenant.createdAt.toISOString() };
    },
  );

  app.post(
    '/v1/tenants/:tenant/api-keys',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Create an API key for the tenant (shown once)',
        params: TenantParams,
        response: { 201: ApiKeySchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { apiKey, key } = await tenants.createApiKey(request.params.tenant);
      request.audit = apiKeyCreated(key.id);
      return reply.code(201).send({ id: key.id, apiKey, createdAt: key.createdAt.toISOString() });
    },
  );

  app.delete(
    '/v1/tenants/:tenant/api-keys/:id',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Revoke an API key',
        params: Type.Object({ tenant: Type.String(), id: Type.String() }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await tenants.revokeApiKey(request.params.tenant, request.params.id);
      request.audit = apiKeyRevoked(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
