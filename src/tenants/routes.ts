import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest, viewPage } from '../shared/paging.js';
import type { Tenant } from '../store/index.js';
import { tenantCreated } from './audit.js';
import { CreatedTenantSchema, CreateTenantBody, TenantSchema } from './schemas.js';
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
        summary:
          "List tenants, oldest first (operator token; a tenant's key sees its own); page with limit and cursor",
        querystring: PageQuery,
        response: { 200: Collection(TenantSchema), ...problemResponses },
      },
    },
    async (request) => {
      const view = (t: Tenant) => ({ ...t, createdAt: t.createdAt.toISOString() });
      if (request.principal.kind !== 'operator') {
        const own = await tenants.authorize(request.principal, request.principal.tenantId);
        return { items: [view(own)] };
      }
      const page = await tenants.pageTenants(pageRequest(request.query));
      return viewPage(page, (items) => items.map(view));
    },
  );
};

/**
 * `/v1/tenants/{tenant}`; registered in the tenant scope (http/tenant-scope.ts), which authorises the
 * tenant. Its API keys are people/routes.ts's.
 */
export const tenantRoutes: FastifyPluginAsyncTypebox<{ tenants: TenantService }> = async (
  app,
  { tenants },
) => {
  app.get(
    '/v1/tenants/:tenant',
    {
      // Every caller of the tenant may read its name, whatever its roles.
      config: { permission: 'any' },
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
};
