import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync, RouteOptions } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { isPermission, type RoutePermission } from '../people/permissions.js';
import type { TenantService } from '../tenants/service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What a tenant route needs (people/permissions.ts): a caller of the tenant without it gets
     * `403 forbidden`. Every route of the tenant scope must declare it; `any` lets every caller of
     * the tenant in.
     */
    permission?: RoutePermission;
  }
}

/** Set on the scope (and so seen by every plugin registered in it) by {@link tenantScope}. */
const IN_TENANT_SCOPE = 'twowayTenantScope';

/** A route of one tenant: `/v1/tenants/:tenant` and everything below it. */
const SCOPED_PATH = /^\/v1\/tenants\/:tenant(\/|$)/;

export interface TenantScopeOptions {
  tenants: Pick<TenantService, 'authorize'>;
  /** Registers the tenant routes (domain plugins) on the scope. */
  routes(scope: FastifyInstance): Promise<void>;
}

/**
 * The one place where tenant routes are authorised: an encapsulated plugin whose `preHandler`
 * calls `tenants.authorize(request.principal, request.params.tenant)` before any handler of a route
 * registered in it runs, then checks the route's permission. Another tenant's key or member gets
 * `404 not_found`, exactly as a tenant that does not exist; in its own tenant, a key or member
 * session whose roles lack the route's `config.permission` gets `403 forbidden`. The operator
 * (token or console session) may act on every existing tenant with every permission.
 *
 * It runs after validation (as the handlers' own calls did), so a malformed request still answers
 * `400` whoever sends it, and before any upload is read. Every route registered in the scope must
 * be under `/v1/tenants/:tenant`, not public, and declare its permission, or registration throws
 * (the declaration is also published in the OpenAPI document as `x-permission`);
 * {@link refuseUnscopedTenantRoutes} makes the opposite hold, so a new tenant route cannot skip the
 * checks: it is refused by default.
 */
export const tenantScope: FastifyPluginAsync<TenantScopeOptions> = async (scope, { tenants, routes }) => {
  scope.decorate(IN_TENANT_SCOPE, true);
  scope.addHook('onRoute', (route: RouteOptions) => {
    const name = `${String(route.method)} ${route.url}`;
    if (!SCOPED_PATH.test(route.url) || route.config?.public === true) {
      throw new Error(`${name} is in the tenant scope but not a private /v1/tenants/:tenant route`);
    }
    const permission = route.config?.permission;
    if (permission !== 'any' && !isPermission(permission)) {
      throw new Error(`${name} declares no permission (config.permission, see people/permissions.ts)`);
    }
    const schema = route.schema ?? {};
    const response = schema.response as Record<string, unknown> | undefined;
    route.schema = {
      ...schema,
      ...(response && permission !== 'any' ? { response: { 403: Type.Ref('Problem'), ...response } } : {}),
      // An OpenAPI extension (@fastify/swagger copies `x-` keys): clients and the permission walk read it.
      ...{ 'x-permission': permission },
    };
  });
  scope.addHook('preHandler', async (request) => {
    const tenant = (request.params as { tenant?: unknown } | undefined)?.tenant;
    if (typeof tenant !== 'string') throw new AppError('not_found', 'No such tenant.');
    const { principal } = request;
    await tenants.authorize(principal, tenant);
    const needed = request.routeOptions.config.permission;
    if (principal.kind === 'tenant' && needed !== 'any' && (!needed || !principal.permissions.has(needed))) {
      throw new AppError('forbidden', `This needs the permission ${needed ?? '(undeclared)'}.`);
    }
  });
  await routes(scope);
};

/**
 * An `onRoute` hook for the root instance: a route under `/v1/tenants/` registered anywhere but in
 * {@link tenantScope} throws at start-up, so a tenant route is refused by default rather than open.
 */
export function refuseUnscopedTenantRoutes(this: FastifyInstance, route: RouteOptions): void {
  if (route.url.startsWith('/v1/tenants/') && !this.hasDecorator(IN_TENANT_SCOPE)) {
    throw new Error(
      `${route.method} ${route.url} must be registered in the tenant scope (http/tenant-scope.ts)`,
    );
  }
}
