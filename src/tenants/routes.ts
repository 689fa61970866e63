import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest, viewPage } from '../shared/paging.js';
import type { Tenant } from '../store/index.js';
import { tenantCreated, tenantUpdated } from './audit.js';
import type { EdgeAccess } from './edge-access.js';
import { CreatedTenantSchema, CreateTenantBody, PatchTenantBody, TenantSchema } from './schemas.js';
import type { TenantService } from './service.js';

/** What the tenant routes need. */
export interface TenantRouteOptions {
  tenants: TenantService;
  /** The operator's edge switch per tenant (shown as `edgeEnabled`). */
  edge: EdgeAccess;
}

/** A tenant as the API shows it. */
function tenantView(tenant: Tenant, edge: EdgeAccess) {
  return { ...tenant, createdAt: tenant.createdAt.toISOString(), edgeEnabled: edge.enabledFor(tenant) };
}

/** `/v1/tenants`: create (operator token) and list (the operator's every tenant, a key's own). */
export const tenantListRoutes: FastifyPluginAsyncTypebox<TenantRouteOptions> = async (
  app,
  { tenants, edge },
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
      return reply.code(201).send({ ...tenantView(tenant, edge), apiKey, apiKeyId: keyId });
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
      const view = (t: Tenant) => tenantView(t, edge);
      if (request.principal.kind !== 'operator') {
        const own = await tenants.authorize(request.principal, request.principal.tenantId);
        return { items: [view(own)] };
      }
      const page = await tenants.pageTenants(pageRequest(request.query));
      // `_platform` holds the platform's own identities (platform/service.ts): not a tenant to list.
      return viewPage(page, (items) => items.filter((t) => !t.id.startsWith('_')).map(view));
    },
  );
};

/**
 * `/v1/tenants/{tenant}`; registered in the tenant scope (http/tenant-scope.ts), which authorises the
 * tenant. Its API keys are people/routes.ts's.
 */
export const tenantRoutes: FastifyPluginAsyncTypebox<TenantRouteOptions> = async (app, { tenants, edge }) => {
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
      return tenantView(tenant, edge);
    },
  );

  app.patch(
    '/v1/tenants/:tenant',
    {
      // The default identity is a choice among the tenant's identities; edgeEnabled is the
      // operator's alone (checked below; the operator holds every permission).
      config: { permission: 'identities:write' },
      schema: {
        tags: ['tenants'],
        summary:
          "Change the tenant's settings: its default identity (used on the next request), edgeEnabled (operator token only)",
        params: TenantParams,
        body: PatchTenantBody,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenantId = request.params.tenant;
      if (!(await tenants.getTenant(tenantId))) throw new AppError('not_found', 'No such tenant.');
      const { edgeEnabled, defaultIdentityId } = request.body;
      if (edgeEnabled !== undefined && request.principal.kind !== 'operator') {
        throw new AppError('operator_only', 'Only the operator switches inbound mTLS for a tenant.');
      }
      const changes: Record<string, unknown> = {};
      if (defaultIdentityId !== undefined) {
        await tenants.setDefaultIdentity(tenantId, defaultIdentityId);
        changes.defaultIdentityId = defaultIdentityId;
      }
      if (edgeEnabled !== undefined) {
        await edge.set(tenantId, edgeEnabled);
        changes.edgeEnabled = edgeEnabled;
      }
      if (Object.keys(changes).length > 0) request.audit = tenantUpdated(tenantId, changes);
      const tenant = await tenants.getTenant(tenantId);
      if (!tenant) throw new AppError('not_found', 'No such tenant.');
      return tenantView(tenant, edge);
    },
  );
};
